"""
### plants_monitor

Hourly drift check of what the inference API served. `check_drift` reads the
prediction log written since the previous run (`predictions/` in the data bucket),
compares it with the champion's `reference.json` (out-of-distribution rate, novelty
scores, predicted-label mix, confidence), and writes its report and plot to
`monitoring/reports/` and to an MLflow run in `plantops-monitoring`. Below
`PLANTOPS_MONITOR_MIN_RECORDS` records it says "not enough data", never drift.

`request_retraining` emits the Asset `plantops-retrain-request` only when drift was
found AND reviewed (accepted) feedback is waiting since the champion was trained; it
schedules `plants_ingest`, whose new dataset version schedules `plants_train`.
Otherwise it is skipped: the run only reports.

The logic lives in `plantops_orchestration.monitoring`; this file only wires tasks.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from plantops_orchestration.assets import retrain_request_asset

RETRAIN_REQUEST = retrain_request_asset()


@dag(
    dag_id="plants_monitor",
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["plantops", "monitoring"],
    doc_md=__doc__,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=1)},
)
def plants_monitor():
    @task
    def check_drift() -> dict:
        from plantops_orchestration.config import get_settings
        from plantops_orchestration.monitoring import run_monitor, summary

        return summary(run_monitor(get_settings()))

    @task(outlets=[RETRAIN_REQUEST])
    def request_retraining(report: dict) -> str:
        from airflow.sdk.exceptions import AirflowSkipException

        if not report["retrain"]:
            # Skipped, so no Asset event: nothing is retrained on this report.
            raise AirflowSkipException(report["reason"])
        return report["reason"]

    request_retraining(check_drift())


plants_monitor()
