"""Settings come from PLANTOPS_* variables, with the names docs/architecture.md gives."""

from __future__ import annotations

import pytest

from plantops_inference_api.config import Settings

pytestmark = pytest.mark.unit


def test_shared_and_own_variables_are_read(monkeypatch):
    env = {
        "PLANTOPS_MLFLOW_TRACKING_URI": "http://mlflow:5000",
        "PLANTOPS_S3_ENDPOINT": "minio:9000",
        "PLANTOPS_S3_ACCESS_KEY": "ak",
        "PLANTOPS_S3_SECRET_KEY": "sk",
        "PLANTOPS_S3_SECURE": "true",
        "PLANTOPS_API_KEY": "key",
        "PLANTOPS_MODEL_ALIAS": "challenger",
        "PLANTOPS_MAX_BATCH_SIZE": "4",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.mlflow_tracking_uri == "http://mlflow:5000"
    assert settings.s3_endpoint == "minio:9000"
    assert settings.s3_secret_key is not None and settings.s3_secret_key.get_secret_value() == "sk"
    assert settings.s3_secure is True
    assert settings.model_alias == "challenger"
    assert settings.model_name == "plantops-classifier"
    assert settings.max_batch_size == 4
    assert "sk" not in repr(settings)  # secrets never printed


def test_empty_values_mean_unset(monkeypatch):
    monkeypatch.setenv("PLANTOPS_MODEL_PATH", "")
    monkeypatch.setenv("PLANTOPS_API_KEY", "")
    settings = Settings()
    assert settings.model_path is None
    assert settings.api_key is None
