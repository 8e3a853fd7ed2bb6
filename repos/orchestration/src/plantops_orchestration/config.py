"""Settings of the ingestion and the DAGs: the only place this package reads the environment."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

CANONICAL_PREFIX = (
    "https://raw.githubusercontent.com/btphan95/greenr-airflow/refs/heads/master/data/"
)


class Settings(BaseSettings):
    """Everything `plantops-data` and the DAGs read, from `PLANTOPS_*` variables.

    Credentials have no default: a missing one is a clear start-up error, not a
    silent connection to somebody else's server.
    """

    model_config = SettingsConfigDict(env_prefix="PLANTOPS_", extra="ignore")

    # --- MySQL: the plants_data table
    mysql_host: str = "127.0.0.1"
    mysql_port: int = 3306
    mysql_user: str
    mysql_password: str
    mysql_database: str = "plantops"

    # --- S3: the raw/, fmt/ and agg/ layers
    s3_endpoint: str = "127.0.0.1:9000"
    s3_access_key: str
    s3_secret_key: str
    s3_secure: bool = False
    s3_bucket: str = "plantops-data"

    # --- Mirror: URLs starting with the prefix are fetched from the base URL (empty: no mirror)
    mirror_prefix: str = CANONICAL_PREFIX
    mirror_base_url: str = ""

    # --- Download
    download_concurrency: int = Field(8, ge=1, le=64)
    connect_timeout_s: float = Field(5.0, gt=0)
    read_timeout_s: float = Field(15.0, gt=0)
    # A whole-body deadline: a server trickling bytes never trips the read timeout.
    download_deadline_s: float = Field(30.0, gt=0)
    download_retries: int = Field(2, ge=0, le=10)
    retry_backoff_s: float = Field(0.5, ge=0)
    max_download_bytes: int = Field(10 * 1024 * 1024, gt=0)
    # Runs that may try a row again after a transient failure (timeout, 5xx, reset).
    max_attempts: int = Field(3, ge=1)

    # --- Validation and the fmt/ copy
    min_image_side: int = Field(32, ge=1)
    max_image_pixels: int = Field(40_000_000, gt=0)
    fmt_max_side: int = Field(1024, ge=32)
    fmt_jpeg_quality: int = Field(90, ge=50, le=100)

    # --- agg/: train/val/test fractions (test is the rest)
    split_train: float = Field(0.70, gt=0, lt=1)
    split_val: float = Field(0.15, gt=0, lt=1)

    # --- Retraining: the training CLI of the training environment (shell words)
    train_command: str = "../ml-training/.venv/bin/plantops-train"
    # Extra shell words appended after `train --dataset-version <version>`.
    train_args: str = ""
    train_timeout_s: int = Field(3600, gt=0)

    @model_validator(mode="after")
    def _splits_leave_a_test_split(self) -> Settings:
        if self.split_train + self.split_val >= 1:
            raise ValueError("PLANTOPS_SPLIT_TRAIN + PLANTOPS_SPLIT_VAL must be below 1")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()  # type: ignore[call-arg]  # credentials come from the environment
