"""Settings of the ingestion and the DAGs: the only place this package reads the environment."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

CANONICAL_PREFIX = (
    "https://raw.githubusercontent.com/btphan95/greenr-airflow/refs/heads/master/data/"
)


TrainLauncher = Literal["subprocess", "docker", "kubernetes"]


class TrainingSettings(BaseSettings):
    """How `plants_train` runs the training: read when the DAG file is parsed.

    Nothing here is secret or required, so the DAG parses without credentials.
    """

    model_config = SettingsConfigDict(env_prefix="PLANTOPS_", extra="ignore")

    # subprocess: a local training CLI; docker / kubernetes: the ml-training image
    # (entrypoint plantops-train) run by DockerOperator / KubernetesPodOperator.
    train_launcher: TrainLauncher = "subprocess"
    # Extra shell words appended after `train --dataset-version <version>` (every launcher).
    train_args: str = ""
    # The one training deadline: Airflow's execution_timeout for every launcher, the
    # subprocess watchdog, and the Kubernetes pod's active deadline.
    train_timeout_s: int = Field(default=3600, gt=0)
    # Here, not in Settings: the DAG files build the Asset URI from it when parsed,
    # without credentials.
    s3_bucket: str = "plantops-data"

    # --- subprocess: the training CLI of the training environment (shell words)
    train_command: str = "../ml-training/.venv/bin/plantops-train"

    # --- docker and kubernetes: the training image
    train_image: str = "plantops/ml-training:0.1.0"

    # --- docker: the engine, and the network where MinIO and MLflow answer by name
    train_docker_url: str = "unix://var/run/docker.sock"
    train_docker_network: str = ""

    # --- kubernetes: where the training pod runs and what it gets. The ConfigMap gives
    # its environment; the Secret its S3 keys (PLANTOPS_S3_ACCESS_KEY, _SECRET_KEY).
    train_k8s_namespace: str = "plantops"
    train_k8s_service_account: str = "default"
    train_k8s_config_map: str = "plantops-trainer-config"
    train_k8s_secret: str = "plantops-trainer-secrets"
    train_k8s_cpu: str = "2"
    train_k8s_memory: str = "4Gi"


class Settings(TrainingSettings):
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
    # A label enters a dataset once it has this many accepted photos (and one in train);
    # until then stats.json lists it as held back. 10 photos: 7 to train on and about 1.5
    # each to validate and test, on average; training refuses a label with no train photo.
    dataset_min_label_images: int = Field(10, ge=1)

    # --- MLflow: forwarded to the training container (docker launcher); read by plants_monitor
    mlflow_tracking_uri: str = "http://127.0.0.1:5000"

    # --- plants_monitor (monitoring.py): the prediction log against the champion's reference.
    # Fixed before any data was seen; see the module docstring for the decision rule.
    model_name: str = "plantops-classifier"
    model_alias: str = "champion"
    monitor_experiment: str = "plantops-monitoring"
    # Below this many records of the champion: "not enough data", never drift.
    monitor_min_records: int = Field(100, ge=1)
    monitor_alpha: float = Field(0.01, gt=0, lt=1)
    # The out-of-distribution rate drifts only this far above the validation false alarms.
    monitor_ood_margin: float = Field(0.05, ge=0, le=1)
    # A KS test drifts only with a gap of at least this between the two CDFs.
    monitor_ks_min_statistic: float = Field(0.1, ge=0, le=1)
    monitor_psi_threshold: float = Field(0.25, gt=0)
    monitor_first_window_h: float = Field(24.0, gt=0)
    monitor_max_window_h: float = Field(168.0, gt=0)
    # Log objects written in the last seconds wait for the next run (S3 times are seconds).
    monitor_settle_s: float = Field(2.0, ge=0)

    @model_validator(mode="after")
    def _splits_leave_a_test_split(self) -> Settings:
        if self.split_train + self.split_val >= 1:
            raise ValueError("PLANTOPS_SPLIT_TRAIN + PLANTOPS_SPLIT_VAL must be below 1")
        return self


@lru_cache
def get_training_settings() -> TrainingSettings:
    return TrainingSettings()


@lru_cache
def get_settings() -> Settings:
    return Settings()  # type: ignore[call-arg]  # credentials come from the environment
