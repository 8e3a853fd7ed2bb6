"""
### plants_train

Trains a model on the latest dataset version: scheduled on the Asset
`plantops-dataset` (a new version from `plants_ingest`) and weekly.

It runs the training CLI of the training environment as a subprocess
(`PLANTOPS_TRAIN_COMMAND train --dataset-version <version>`), locally the
ml-training virtualenv. Airflow's own environment never installs torch. In
Compose and Kubernetes the training image needs a container-launching operator
that is not built yet (see docs/architecture.md in the umbrella).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from plantops_orchestration.assets import DATASET


@dag(
    dag_id="plants_train",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 3 * * 1", timezone="UTC"), assets=DATASET
    ),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["plantops", "training"],
    doc_md=__doc__,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=5)},
)
def plants_train():
    @task
    def resolve_dataset_version() -> str:
        from plantops_orchestration.config import get_settings
        from plantops_orchestration.ingest import latest_version

        version = latest_version(get_settings())
        if version is None:
            raise RuntimeError("agg/latest.json is missing: run plants_ingest first")
        return version

    @task(execution_timeout=timedelta(hours=2))
    def train(dataset_version: str) -> dict:
        from plantops_orchestration.config import get_settings
        from plantops_orchestration.training import run_training

        return run_training(get_settings(), dataset_version)

    train(resolve_dataset_version())


plants_train()
