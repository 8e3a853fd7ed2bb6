"""
### plants_ingest

Takes the `plants_data` rows not yet stored (and failed rows with attempts
left), downloads and validates their images, stores them in S3 under `raw/` and
`fmt/`, and writes a content-addressed dataset version under `agg/`. When the
version is new, `agg/latest.json` moves to it and the Asset `plantops-dataset`
gets an event carrying `{"dataset_version": ...}` in its extra, which schedules
`plants_train`. Scheduled daily and on the Asset `plantops-retrain-request`
(plants_monitor: drift found and accepted feedback waiting).

Settings come from `PLANTOPS_*` variables (see repos/orchestration/README.md).
The logic lives in `plantops_orchestration.ingest`; this file only wires tasks.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, get_current_context, task

from plantops_orchestration.assets import EXTRA_KEY, dataset_asset, retrain_request_asset

DATASET = dataset_asset()
RETRAIN_REQUEST = retrain_request_asset()


@dag(
    dag_id="plants_ingest",
    # Daily, and when plants_monitor asks for retraining (drift + accepted feedback waiting).
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 0 * * *", timezone="UTC"), assets=RETRAIN_REQUEST
    ),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["plantops", "data"],
    doc_md=__doc__,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
)
def plants_ingest():
    @task
    def select_rows() -> list[int]:
        from plantops_orchestration.config import get_settings
        from plantops_orchestration.ingest import select_rows

        return select_rows(get_settings())

    @task
    def fetch_and_store(row_ids: list[int]) -> dict:
        from plantops_orchestration.config import get_settings
        from plantops_orchestration.ingest import ingest_rows

        return ingest_rows(get_settings(), row_ids).as_dict()

    @task
    def build_dataset(report: dict) -> str | None:
        # `report` only orders this task after the downloads; the dataset is every stored row.
        from plantops_orchestration.config import get_settings
        from plantops_orchestration.ingest import build_agg

        return build_agg(get_settings()).version

    @task(outlets=[DATASET])
    def publish_dataset(dataset_version: str | None) -> str:
        from airflow.sdk.exceptions import AirflowSkipException

        from plantops_orchestration.config import get_settings
        from plantops_orchestration.ingest import publish_latest

        if dataset_version is None:
            raise AirflowSkipException("no image stored yet: nothing to publish")
        if not publish_latest(get_settings(), dataset_version):
            # Skipped, so no Asset event: training does not rerun on unchanged data.
            raise AirflowSkipException(f"{dataset_version} is already the latest dataset")
        # The event names its version: plants_train trains on it, not on whatever
        # agg/latest.json says by the time it runs.
        get_current_context()["outlet_events"][DATASET].extra = {EXTRA_KEY: dataset_version}
        return dataset_version

    publish_dataset(build_dataset(fetch_and_store(select_rows())))


plants_ingest()
