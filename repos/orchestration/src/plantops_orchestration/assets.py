"""The Airflow Asset that links ingestion to training (imported by the DAG files only)."""

from __future__ import annotations

from airflow.sdk import Asset

# docs/architecture.md: name `plantops-dataset`, the pointer object agg/latest.json.
DATASET = Asset(name="plantops-dataset", uri="s3://plantops-data/agg/latest.json")
