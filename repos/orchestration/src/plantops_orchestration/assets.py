"""The Airflow Assets that chain the DAGs (imported by the DAG files only)."""

from __future__ import annotations

from airflow.sdk import Asset

# docs/architecture.md: name `plantops-dataset`, the pointer object agg/latest.json.
DATASET = Asset(name="plantops-dataset", uri="s3://plantops-data/agg/latest.json")

# plants_monitor's request for retraining: drift found AND accepted feedback waiting since
# the champion. It schedules plants_ingest, which turns the accepted feedback into a new
# dataset version, whose DATASET event then schedules plants_train.
RETRAIN_REQUEST = Asset(
    name="plantops-retrain-request", uri="s3://plantops-data/monitoring/reports/latest.json"
)
