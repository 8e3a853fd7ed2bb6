"""Pytest fixtures that start real servers on free loopback ports (a pytest plugin).

Every component's test environment installs `plantops-infra`, which registers
this module through the `pytest11` entry point. A test then asks for what it
needs by name:

- `s3_server` (session): a SeaweedFS S3 server in a temporary folder; `s3_bucket`
  (function): a fresh bucket on it, emptied and removed afterwards.
- `mysql_server` (session): the machine's MariaDB on 127.0.0.1:3306 when it
  answers (root, empty password, or PLANTOPS_TEST_MYSQL_* variables), else a
  private `mariadbd` on a free port; `mysql_database` (function): a uniquely
  named database, dropped afterwards.
- `mlflow_server` (session): an MLflow tracking server with its own MySQL
  database and S3 bucket.
- `image_mirror` (session): a static HTTP server over the shared plant images.

And the one builder of tiny real ONNX models (`write_tiny_model`, `tiny_model_spec`,
from tiny_model.py) that every suite serving a model uses.

No fixture ever uses the ports of a running `make up` stack (except the
machine's own MariaDB, where each test gets its own database).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from plantops_infra.processes import free_port
from plantops_infra.servers import (
    LOOPBACK,
    MySQLEndpoint,
    S3Endpoint,
    default_images_dir,
    start_mariadb,
    start_mirror,
    start_mlflow,
    start_seaweedfs,
)

# Re-exported: the components' tests import the model builder from here.
from plantops_infra.tiny_model import tiny_model_spec as tiny_model_spec
from plantops_infra.tiny_model import write_tiny_model as write_tiny_model

# Test-only credentials for throwaway servers bound to loopback.
TEST_S3_ACCESS_KEY = "plantops-test"
TEST_S3_SECRET_KEY = "plantops-test-secret"


def unique_name(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True)
class MySQLDatabase:
    """A database on a test server, with the settings a component reads."""

    server: MySQLEndpoint
    name: str

    def connect(self):
        return self.server.connect(self.name)

    def env(self) -> dict[str, str]:
        return {
            "PLANTOPS_MYSQL_HOST": self.server.host,
            "PLANTOPS_MYSQL_PORT": str(self.server.port),
            "PLANTOPS_MYSQL_USER": self.server.user,
            "PLANTOPS_MYSQL_PASSWORD": self.server.password,
            "PLANTOPS_MYSQL_DATABASE": self.name,
        }


@dataclass(frozen=True)
class S3Bucket:
    """A bucket on the test S3 server, with the settings a component reads."""

    server: S3Endpoint
    name: str

    def env(self) -> dict[str, str]:
        return {
            "PLANTOPS_S3_ENDPOINT": self.server.endpoint,
            "PLANTOPS_S3_ACCESS_KEY": self.server.access_key,
            "PLANTOPS_S3_SECRET_KEY": self.server.secret_key,
            "PLANTOPS_S3_SECURE": "false",
            "PLANTOPS_S3_BUCKET": self.name,
            "MLFLOW_S3_ENDPOINT_URL": self.server.url,
            "AWS_ACCESS_KEY_ID": self.server.access_key,
            "AWS_SECRET_ACCESS_KEY": self.server.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
        }


@dataclass(frozen=True)
class MLflowServer:
    url: str
    s3: S3Endpoint
    artifact_bucket: str

    def env(self) -> dict[str, str]:
        return {
            "PLANTOPS_MLFLOW_TRACKING_URI": self.url,
            "MLFLOW_TRACKING_URI": self.url,
            "PLANTOPS_MLFLOW_BUCKET": self.artifact_bucket,
            "MLFLOW_S3_ENDPOINT_URL": self.s3.url,
            "AWS_ACCESS_KEY_ID": self.s3.access_key,
            "AWS_SECRET_ACCESS_KEY": self.s3.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
        }


def empty_and_remove_bucket(s3: S3Endpoint, bucket: str) -> None:
    client = s3.client()
    if not client.bucket_exists(bucket):
        return
    for obj in client.list_objects(bucket, recursive=True):
        client.remove_object(bucket, obj.object_name)
    client.remove_bucket(bucket)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Endpoint]:
    folder = tmp_path_factory.mktemp("s3")
    endpoint = S3Endpoint(LOOPBACK, free_port(), TEST_S3_ACCESS_KEY, TEST_S3_SECRET_KEY)
    proc = start_seaweedfs(folder / "data", endpoint, folder / "weed.log")
    yield endpoint
    proc.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Endpoint) -> Iterator[S3Bucket]:
    bucket = S3Bucket(s3_server, unique_name("test-"))
    s3_server.ensure_buckets(bucket.name)
    yield bucket
    empty_and_remove_bucket(s3_server, bucket.name)


@pytest.fixture(scope="session")
def mysql_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MySQLEndpoint]:
    machine = MySQLEndpoint(
        os.environ.get("PLANTOPS_TEST_MYSQL_HOST", LOOPBACK),
        int(os.environ.get("PLANTOPS_TEST_MYSQL_PORT", "3306")),
        os.environ.get("PLANTOPS_TEST_MYSQL_USER", "root"),
        os.environ.get("PLANTOPS_TEST_MYSQL_PASSWORD", ""),
    )
    if machine.healthy():
        yield machine
        return
    folder = tmp_path_factory.mktemp("mysql")
    proc, endpoint = start_mariadb(folder / "data", free_port(), folder / "mariadb.log")
    yield endpoint
    proc.stop()


@pytest.fixture
def mysql_database(mysql_server: MySQLEndpoint) -> Iterator[MySQLDatabase]:
    database = MySQLDatabase(mysql_server, unique_name("plantops_test_"))
    mysql_server.ensure_database(database.name)
    yield database
    mysql_server.drop_database(database.name)


@pytest.fixture(scope="session")
def mlflow_server(
    tmp_path_factory: pytest.TempPathFactory, mysql_server: MySQLEndpoint, s3_server: S3Endpoint
) -> Iterator[MLflowServer]:
    folder = tmp_path_factory.mktemp("mlflow")
    database = unique_name("plantops_mlflow_test_")
    bucket = unique_name("mlflow-")
    mysql_server.ensure_database(database)
    s3_server.ensure_buckets(bucket)
    m = mysql_server
    backend = f"mysql+pymysql://{m.user}:{m.password}@{m.host}:{m.port}/{database}"
    port = free_port()
    proc = start_mlflow(port, backend, f"s3://{bucket}/", s3_server, folder / "mlflow.log", 180)
    yield MLflowServer(f"http://{LOOPBACK}:{port}", s3_server, bucket)
    proc.stop()
    mysql_server.drop_database(database)


@pytest.fixture(scope="session")
def image_mirror(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (ending in `/`) of a mirror of `shared/datasets/greenr-airflow/data`."""
    images: Path | None = default_images_dir(Path(__file__).parent)
    if images is None or not images.is_dir():
        pytest.fail(
            "The plant images are missing: expected ../shared/datasets/greenr-airflow/data "
            "beside the checkout, or PLANTOPS_IMAGES_DIR."
        )
    folder = tmp_path_factory.mktemp("mirror")
    port = free_port()
    proc = start_mirror(images, port, folder / "mirror.log")
    yield f"http://{LOOPBACK}:{port}/"
    proc.stop()
