"""The web app's settings: the only place the environment is read."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from plantops_webapp.images import ImageBudget

MIN_SECRET_KEY_LENGTH = 16


class Settings(BaseSettings):
    """Every setting comes from a `PLANTOPS_*` variable (see the README for the list)."""

    # An empty variable counts as unset (Compose passes `${VAR:-}` through as "").
    model_config = SettingsConfigDict(env_prefix="PLANTOPS_", extra="ignore", env_ignore_empty=True)

    api_url: str = "http://127.0.0.1:8000"
    # Connecting should be quick; a prediction on a cold model may take a few seconds.
    api_connect_timeout_s: float = 2.0
    api_timeout_s: float = 30.0
    # /readyz must answer before the orchestrator's probe gives up, even when the API hangs.
    api_ready_timeout_s: float = Field(default=2.0, gt=0)

    # Keys the CSRF tokens, the reviewer sessions and the pseudonymous submitter ids. No
    # default: a guessable key would make all three forgeable.
    webapp_secret_key: SecretStr
    # Mark the cookies `Secure` (set it behind HTTPS). A request that arrived over https is
    # answered with Secure cookies anyway; reviewer sign-in over plain http is refused except
    # on a loopback address (local development).
    webapp_cookie_secure: bool = False
    # Origins besides the request's own Host that may POST forms (e.g. the public URL when a
    # proxy rewrites Host): `["https://plants.example.org"]`.
    webapp_allowed_origins: list[str] = []
    # Connections (server.py): the whole request (headers and body) must arrive within
    # this deadline, an idle kept-alive connection is closed after keep_alive, and beyond
    # max_connections open connections uvicorn answers 503.
    webapp_request_read_timeout_s: float = Field(default=15.0, gt=0)
    webapp_keep_alive_timeout_s: int = Field(default=5, gt=0)
    webapp_max_connections: int = Field(default=512, gt=0)
    webapp_max_upload_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    # The inference API's budget per image, under the same variable names and defaults, so
    # that the page refuses what the API would refuse without sending it (images.py).
    max_image_pixels: int = Field(default=12_600_000, gt=0)
    max_aspect_ratio: float = Field(default=8.0, ge=1.0)
    # Below this confidence the result page says the model is unsure.
    webapp_low_confidence: float = Field(default=0.7, ge=0.0, le=1.0)
    # Uploads kept in memory between the result page and the feedback form, per visitor;
    # the whole store is bounded in bytes and evicts from the visitor holding the most.
    webapp_pending_per_visitor: int = Field(default=8, gt=0)
    webapp_pending_total_bytes: int = Field(default=256 * 1024 * 1024, gt=0)
    webapp_pending_ttl_s: float = Field(default=3600.0, gt=0)

    # Abuse limits, in memory and per replica: per visitor (cookie + client address), and
    # every POST per client address whatever its cookies.
    webapp_uploads_per_minute: int = Field(default=20, gt=0)
    webapp_feedback_per_minute: int = Field(default=10, gt=0)
    webapp_posts_per_address_per_minute: int = Field(default=60, gt=0)
    # Feedback items one submitter may have waiting for review; the same photo counts once.
    webapp_max_pending_reviews: int = Field(default=20, gt=0)

    # Reviewer accounts: name -> argon2 hash, as JSON in PLANTOPS_WEBAPP_REVIEWERS and/or as
    # `name:hash` lines in the file (`plantops-webapp add-reviewer` writes it).
    webapp_reviewers: dict[str, str] = {}
    webapp_reviewers_file: Path | None = None
    webapp_review_session_s: float = Field(default=8 * 3600.0, gt=0)
    webapp_signin_max_failures: int = Field(default=5, gt=0)
    webapp_signin_lockout_s: float = Field(default=900.0, gt=0)

    # "Retrain now" on the review page: Airflow 3's REST API and an account allowed to
    # trigger DAG runs. Without a URL the button is disabled with an explanation.
    airflow_url: str | None = None
    airflow_username: str | None = None
    airflow_password: SecretStr | None = None
    airflow_train_dag: str = "plants_train"

    # Feedback storage. Without S3 credentials the feedback form says it is unavailable.
    s3_endpoint: str = "127.0.0.1:9000"
    s3_access_key: str | None = None
    s3_secret_key: SecretStr | None = None
    s3_secure: bool = False
    s3_bucket: str = "plantops-data"

    mysql_host: str = "127.0.0.1"
    mysql_port: int = 3306
    mysql_user: str = "plantops"
    mysql_password: SecretStr = SecretStr("")
    mysql_database: str = "plantops"

    @field_validator("webapp_secret_key")
    @classmethod
    def secret_key_is_long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < MIN_SECRET_KEY_LENGTH:
            raise ValueError(
                f"PLANTOPS_WEBAPP_SECRET_KEY must be at least {MIN_SECRET_KEY_LENGTH} characters"
            )
        return value

    @property
    def image_budget(self) -> ImageBudget:
        return ImageBudget(self.max_image_pixels, self.max_aspect_ratio)

    @property
    def feedback_enabled(self) -> bool:
        return bool(self.s3_access_key and self.s3_secret_key)

    @property
    def retrain_enabled(self) -> bool:
        return bool(self.airflow_url and self.airflow_username and self.airflow_password)


@lru_cache
def get_settings() -> Settings:
    # Required fields (webapp_secret_key) are read from the environment by pydantic-settings;
    # mypy only sees the constructor's signature.
    return Settings()  # type: ignore[call-arg]
