"""MLflow tracking set-up shared by every command that logs to the tracking server."""

from __future__ import annotations

import os

from plantops_ml_training.config import Settings


def use_plantops_s3_for_mlflow(settings: Settings) -> None:
    """MLflow's client writes artifacts with boto3, which reads its own variables;
    fill them from the PLANTOPS_* settings when the caller has not set them."""
    os.environ.setdefault("MLFLOW_S3_ENDPOINT_URL", settings.s3_url)
    if settings.s3_access_key and settings.s3_secret_key:
        os.environ.setdefault("AWS_ACCESS_KEY_ID", settings.s3_access_key)
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", settings.s3_secret_key.get_secret_value())
