"""Settings of the local stack: the only place this package reads the environment."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

LOOPBACK = "127.0.0.1"


class StackSettings(BaseSettings):
    """Ports, credentials and folders of the local stack (see `local/stack.env`)."""

    model_config = SettingsConfigDict(env_prefix="PLANTOPS_", extra="ignore")

    state_dir: Path = Path(".stack")

    s3_port: int = 9000
    s3_access_key: str
    s3_secret_key: str
    s3_bucket: str = "plantops-data"
    mlflow_bucket: str = "plantops-mlflow"

    mysql_port: int = 3306
    mysql_admin_user: str = "root"
    mysql_admin_password: str = ""
    mysql_user: str = "plantops"
    mysql_password: str
    mysql_database: str = "plantops"
    mlflow_database: str = "plantops_mlflow"

    mlflow_port: int = 5000

    mirror_port: int = 8090
    mirror_prefix: str = (
        "https://raw.githubusercontent.com/btphan95/greenr-airflow/refs/heads/master/data/"
    )
    images_dir: Path | None = None

    api_port: int = 8000
    webapp_port: int = 8080


@lru_cache
def get_settings() -> StackSettings:
    return StackSettings()  # type: ignore[call-arg]  # secrets come from the environment
