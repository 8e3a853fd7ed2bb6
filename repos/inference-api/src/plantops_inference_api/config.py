"""Settings of the inference API: the only place the environment is read."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from plantops_inference_api.auth import parse_networks
from plantops_inference_api.preprocessing import ImageBudget


class Settings(BaseSettings):
    """Every `PLANTOPS_*` variable the API reads (docs/architecture.md, "Settings")."""

    model_config = SettingsConfigDict(env_prefix="PLANTOPS_", extra="ignore")

    # Where the model comes from: a local folder (no MLflow) when `model_path` is set,
    # otherwise the alias of a registered model, resolved through MLflow's REST API.
    model_path: str | None = None
    model_name: str = "plantops-classifier"
    model_alias: str = "champion"
    mlflow_tracking_uri: str = "http://127.0.0.1:5000"
    mlflow_timeout_s: float = 10.0

    # S3 holding the MLflow artifacts (the bucket is named by the model version's source).
    s3_endpoint: str = "127.0.0.1:9000"
    s3_access_key: SecretStr | None = None
    s3_secret_key: SecretStr | None = None
    s3_secure: bool = False
    # The image layers (fmt/ keys of test_predictions.csv): read only by `check-skew`.
    s3_bucket: str = "plantops-data"

    # How often the alias is checked for a new version once a model serves, and how
    # often loading is retried while none does (MLflow or S3 down at start).
    model_poll_interval_s: float = Field(default=30.0, gt=0)
    model_retry_interval_s: float = Field(default=5.0, gt=0)
    # Start-up waits this long for the first load before serving (/readyz says 503 meanwhile).
    startup_wait_s: float = Field(default=15.0, ge=0)

    # Protects POST /v1/model/reload; without it the endpoint answers 403. After this many
    # wrong keys from one address in a minute, it answers 429 (auth.py).
    api_key: SecretStr | None = None
    reload_max_failures_per_minute: int = Field(default=5, gt=0)
    # Who may read /metrics: comma-separated addresses or networks ("10.0.0.0/8,127.0.0.1");
    # empty: everyone (then restrict it where the port is exposed).
    metrics_allowed_networks: str = ""

    # Limits on what a client may send.
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    # The work per image (preprocessing.py, `ImageBudget`): decoded pixels, and the long
    # side over the short side (the resize multiplies the long side by the same factor).
    # 12.6 Mpx: a 4096x3072 phone photo; bench/bench_images.py measures what it costs.
    max_image_pixels: int = Field(default=12_600_000, gt=0)
    max_aspect_ratio: float = Field(default=8.0, ge=1.0)
    max_batch_size: int = Field(default=16, gt=0, le=256)

    # Inference: requests that arrive together are run as one onnxruntime batch. Small:
    # on CPU a bigger batch is not faster per image, and onnxruntime keeps the memory
    # of the largest batch it ran (measured: 16 -> +150 MB RSS with EfficientNet-Lite0).
    inference_batch_size: int = Field(default=4, gt=0, le=256)
    # Threads of the CPU pool that decodes and preprocesses images and runs the inference
    # batches (0: one per CPU core); more only fight onnxruntime for the same cores.
    preprocess_workers: int = Field(default=0, ge=0)
    # onnxruntime's intra-op threads (0: one per core this process may use; model.py).
    onnx_threads: int = Field(default=0, ge=0)

    # Admission control (middleware.py): prediction requests served or queued at once;
    # beyond it, 503 + Retry-After before the body is read. 32 = about 0.25 s of work at
    # the measured capacity (~130 images/s on 2 cores), keeping the p95 of admitted
    # requests well under 500 ms under any overload (docs/BENCHMARKS.md, "Load").
    max_in_flight: int = Field(default=32, gt=0)

    # The prediction log (prediction_log.py): every prediction as one JSON Lines record
    # under s3://<bucket>/predictions/date=YYYY-MM-DD/, written in background at least
    # every flush interval or every `flush_records` records. Off without S3 credentials.
    prediction_log_enabled: bool = True
    prediction_log_bucket: str = ""  # empty: s3_bucket, the data bucket
    prediction_log_flush_interval_s: float = Field(default=30.0, gt=0, le=30)
    prediction_log_flush_records: int = Field(default=500, gt=0)
    # Records held while S3 is slow or down; beyond it the oldest is dropped (and counted).
    # 10,000 records are about 4 MB.
    prediction_log_buffer_records: int = Field(default=10_000, gt=0)
    prediction_log_timeout_s: float = Field(default=5.0, gt=0)
    prediction_log_shutdown_timeout_s: float = Field(default=10.0, gt=0)
    # The rolling out-of-distribution share of /metrics: over the last N scored predictions.
    novelty_window: int = Field(default=200, gt=0)

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # Connections (server.py): the whole request (headers and body) must arrive within
    # this deadline, an idle kept-alive connection is closed after keep_alive, and beyond
    # max_connections open connections uvicorn answers 503. 15 s is 10 MiB at 700 kB/s.
    api_request_read_timeout_s: float = Field(default=15.0, gt=0)
    api_keep_alive_timeout_s: int = Field(default=5, gt=0)
    api_max_connections: int = Field(default=512, gt=0)
    log_level: str = "INFO"

    @field_validator("model_path", "api_key", "s3_access_key", "s3_secret_key", mode="before")
    @classmethod
    def empty_is_unset(cls, value: object) -> object:
        # `PLANTOPS_MODEL_PATH=` in an env file means "not set", not "the current folder".
        return None if value == "" else value

    @field_validator("metrics_allowed_networks")
    @classmethod
    def networks_parse(cls, value: str) -> str:
        parse_networks(value)  # a ValueError names the bad entry
        return value

    @model_validator(mode="after")
    def _log_buffer_holds_a_flush(self) -> Settings:
        if self.prediction_log_buffer_records < self.prediction_log_flush_records:
            raise ValueError(
                "PLANTOPS_PREDICTION_LOG_BUFFER_RECORDS must be at least "
                "PLANTOPS_PREDICTION_LOG_FLUSH_RECORDS"
            )
        return self

    @property
    def image_budget(self) -> ImageBudget:
        return ImageBudget(self.max_image_pixels, self.max_aspect_ratio)

    @property
    def max_request_bytes(self) -> int:
        """The largest request body accepted: a full batch plus room for multipart headers."""
        return self.max_upload_bytes * self.max_batch_size + 1024 * 1024


@lru_cache
def get_settings() -> Settings:
    return Settings()


def usable_cores() -> int:
    """The cores this process may use (taskset, cpusets), not all of the machine's: the
    default size of the preprocessing pool and of onnxruntime's threads."""
    return len(os.sched_getaffinity(0))
