"""Bad input is refused with a clear message before training, and nothing is registered."""

from __future__ import annotations

import io

import pytest
from mlflow.tracking import MlflowClient
from plantops_infra.processes import free_port
from typer.testing import CliRunner

from plantops_ml_training.cli import app
from plantops_ml_training.config import REGISTERED_MODEL, get_settings

from .conftest import TINY_CONFIG, Split, put_dataset, put_manifest

pytestmark = pytest.mark.integration


def registered_versions(mlflow_server) -> int:
    return len(MlflowClient(mlflow_server.url).search_model_versions(f"name='{REGISTERED_MODEL}'"))


def training_runs(mlflow_server) -> int:
    client = MlflowClient(mlflow_server.url)
    ids = [e.experiment_id for e in client.search_experiments()]
    return len(client.search_runs(ids)) if ids else 0


@pytest.fixture
def refused(stack_env, mlflow_server):
    """Run `train` expecting a refusal; check it starts no training run and registers nothing."""

    def run(env_changes: dict[str, str] | None = None, *flags: str) -> str:
        before = registered_versions(mlflow_server)
        runs_before = training_runs(mlflow_server)
        env = {**stack_env, **(env_changes or {})}
        get_settings.cache_clear()
        result = CliRunner().invoke(app, ["train", "--config", str(TINY_CONFIG), *flags], env=env)
        get_settings.cache_clear()
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        assert registered_versions(mlflow_server) == before
        assert training_runs(mlflow_server) == runs_before, "refused before any training run"
        return result.output

    return run


def test_an_unknown_dataset_version_is_named(refused):
    output = refused(None, "--dataset-version", "no-such-version")
    assert "Unknown dataset version 'no-such-version'" in output


def test_latest_without_any_published_dataset(refused, s3_server):
    name = f"empty-{free_port()}"
    s3_server.ensure_buckets(name)
    output = refused({"PLANTOPS_S3_BUCKET": name})
    assert "agg/latest.json does not exist" in output


def test_a_manifest_with_one_label_is_refused(refused, s3_server, data_bucket, images_dir):
    put_dataset(
        s3_server.client(), data_bucket, "one-label", images_dir, Split(2, 1, 1), ("grass",), False
    )
    assert "at least two" in refused(None, "--dataset-version", "one-label")


def test_a_manifest_with_an_empty_split_is_refused(refused, s3_server, data_bucket, images_dir):
    rows = put_dataset(s3_server.client(), data_bucket, "no-test", images_dir, Split(2, 1, 0))
    put_manifest(s3_server.client(), data_bucket, "no-test", rows)
    assert "no images in its 'test' split" in refused(None, "--dataset-version", "no-test")


def test_an_fmt_object_that_is_not_an_image(refused, s3_server, data_bucket, images_dir):
    rows = put_dataset(s3_server.client(), data_bucket, "broken", images_dir, Split(2, 1, 1))
    broken = "f" * 64  # a manifest row as the contract has it, over bytes that are no image
    rows[0].update(key=f"fmt/dandelion/{broken}.jpg", sha256=broken)
    s3_server.client().put_object(data_bucket, rows[0]["key"], io.BytesIO(b"<html>"), 6)
    put_manifest(s3_server.client(), data_bucket, "broken", rows)
    output = refused(None, "--dataset-version", "broken")
    assert f"fmt/dandelion/{broken}.jpg is not a readable image" in output


def test_s3_unreachable(refused):
    output = refused({"PLANTOPS_S3_ENDPOINT": f"127.0.0.1:{free_port()}"})
    assert "S3 at 127.0.0.1" in output


def test_wrong_s3_credentials(refused):
    assert "cannot be used" in refused({"PLANTOPS_S3_SECRET_KEY": "wrong"})


def test_mlflow_unreachable(refused):
    url = f"http://127.0.0.1:{free_port()}"
    output = refused({"PLANTOPS_MLFLOW_TRACKING_URI": url})
    assert f"MLflow tracking server {url} does not answer" in output
