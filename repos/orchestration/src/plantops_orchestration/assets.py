"""The Airflow Assets that chain the DAGs (imported by the DAG files only).

docs/architecture.md: name `plantops-dataset`, the pointer object agg/latest.json of the
configured bucket. Each event carries the version it published in its extra
(`{"dataset_version": ...}`), so `plants_train` trains on exactly that version.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from airflow.sdk import Asset

from plantops_orchestration.config import get_training_settings
from plantops_orchestration.layout import LATEST_KEY

ASSET_NAME = "plantops-dataset"
EXTRA_KEY = "dataset_version"
RETRAIN_REQUEST_NAME = "plantops-retrain-request"
RETRAIN_REQUEST_KEY = "monitoring/reports/latest.json"


def dataset_asset() -> Asset:
    """The Asset of the configured bucket (PLANTOPS_S3_BUCKET), built when a DAG file is
    parsed: both DAG files read the same setting, so they name the same Asset."""
    return Asset(name=ASSET_NAME, uri=f"s3://{get_training_settings().s3_bucket}/{LATEST_KEY}")


def retrain_request_asset() -> Asset:
    """plants_monitor's request for retraining: drift found AND accepted feedback waiting
    since the champion. It schedules plants_ingest, which turns the accepted feedback into
    a new dataset version, whose dataset event then schedules plants_train."""
    bucket = get_training_settings().s3_bucket
    return Asset(name=RETRAIN_REQUEST_NAME, uri=f"s3://{bucket}/{RETRAIN_REQUEST_KEY}")


def version_from_events(events: Iterable[Any]) -> str | None:
    """The dataset version of the newest event that names one (events oldest first)."""
    for event in reversed(list(events)):
        extra: Mapping[str, Any] = getattr(event, "extra", None) or {}
        version = extra.get(EXTRA_KEY)
        if isinstance(version, str) and version:
            return version
    return None
