"""`plantops-train train` against real S3 (SeaweedFS) and a real MLflow server.

One tiny training run (20 images per label, 64 px, one epoch) is shared by the
module; the registry tests then build on the versions it created.
"""

from __future__ import annotations

import csv
import io
import json
import re

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from PIL import Image
from typer.testing import CliRunner

from plantops_ml_training.cli import app
from plantops_ml_training.config import REGISTERED_MODEL, get_settings
from plantops_ml_training.export import onnx_session
from plantops_ml_training.preprocessing import PreprocessingSpec, preprocess

from .conftest import TINY_CONFIG, Split, put_dataset

pytestmark = pytest.mark.integration

VERSION = "2026-11-27T000000Z"


def invoke(env: dict[str, str], *args: str):
    get_settings.cache_clear()
    result = CliRunner().invoke(app, list(args), env=env)
    get_settings.cache_clear()
    return result


def train(env: dict[str, str], *flags: str) -> dict:
    result = invoke(env, "train", "--config", str(TINY_CONFIG), *flags)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def client(mlflow_server) -> MlflowClient:
    client = MlflowClient(mlflow_server.url)
    # The registry is shared by the test session: start this module from a clean slate.
    if client.search_registered_models(f"name='{REGISTERED_MODEL}'"):
        client.delete_registered_model(REGISTERED_MODEL)
    return client


@pytest.fixture(scope="module")
def first_run(stack_env, s3_server, data_bucket, images_dir, client) -> dict:
    put_dataset(s3_server.client(), data_bucket, VERSION, images_dir, Split(12, 4, 4))
    with pytest.MonkeyPatch.context() as patch:
        for key, value in stack_env.items():
            patch.setenv(key, value)
        return train(stack_env)


def run_objects(mlflow_server, run_id: str) -> dict[str, bytes]:
    s3 = mlflow_server.s3.client()
    objects = s3.list_objects(mlflow_server.artifact_bucket, recursive=True)
    found = {}
    for obj in objects:
        if f"/{run_id}/artifacts/" in obj.object_name:
            name = obj.object_name.split("/artifacts/", 1)[1]
            found[name] = s3.get_object(mlflow_server.artifact_bucket, obj.object_name).read()
    return found


def test_first_model_becomes_challenger_and_champion(first_run, client):
    assert first_run["dataset_version"] == VERSION  # `latest` was resolved
    assert first_run["promoted"] is True
    version = first_run["model_version"]
    assert client.get_model_version_by_alias(REGISTERED_MODEL, "champion").version == version
    assert client.get_model_version_by_alias(REGISTERED_MODEL, "challenger").version == version
    source = client.get_model_version(REGISTERED_MODEL, version).source
    artifact_uri = client.get_run(first_run["run_id"]).info.artifact_uri
    assert source == f"{artifact_uri}/model"
    assert source.startswith("s3://")


def test_run_records_tags_params_epoch_and_test_metrics(first_run, client):
    run = client.get_run(first_run["run_id"])
    assert client.get_experiment(run.info.experiment_id).name == "plantops"
    assert run.data.tags["dataset_version"] == VERSION
    assert run.data.tags["backbone"] == "efficientnet-lite0"
    assert re.fullmatch(r"[0-9a-f]{40}|unknown", run.data.tags["git_commit"])
    assert run.data.tags["promotion_decision"] == "promoted"
    assert "floor" in run.data.tags["promotion_reason"]
    assert run.data.params["image_size"] == "64"
    assert run.data.params["labels"] == "dandelion,grass"
    for name in ("test_accuracy", "test_macro_f1", "test_ece", "test_recall_grass"):
        assert 0.0 <= run.data.metrics[name] <= 1.0
    assert run.data.metrics["onnx_max_abs_diff"] < 1e-4
    for name in ("train_loss", "valid_loss", "train_accuracy", "valid_accuracy"):
        assert len(client.get_metric_history(run.info.run_id, name)) == 1  # one epoch


def test_artifacts_are_stored_in_s3(first_run, mlflow_server):
    objects = run_objects(mlflow_server, first_run["run_id"])
    expected = {
        "model/model.onnx",
        "model/preprocessing.json",
        "model/test_predictions.csv",
        "fastai/learner.pkl",
        "plots/confusion_matrix.png",
        "plots/worst_mistakes.png",
        "metrics/test_metrics.json",
        "promotion_decision.txt",
    }
    assert expected <= set(objects)
    spec = json.loads(objects["model/preprocessing.json"])
    assert spec["labels"] == ["dandelion", "grass"]
    assert (spec["crop_size"], spec["resize_shorter_side"]) == (64, 73)
    assert Image.open(io.BytesIO(objects["plots/confusion_matrix.png"])).format == "PNG"


def test_the_served_files_reproduce_the_logged_test_predictions(
    first_run, mlflow_server, s3_server, data_bucket, tmp_path
):
    """What the API will do: ONNX + preprocessing.json from S3, images from fmt/."""
    objects = run_objects(mlflow_server, first_run["run_id"])
    (tmp_path / "model.onnx").write_bytes(objects["model/model.onnx"])
    spec = PreprocessingSpec.from_json(objects["model/preprocessing.json"].decode())
    session = onnx_session(tmp_path / "model.onnx")
    rows = list(csv.DictReader(io.StringIO(objects["model/test_predictions.csv"].decode())))
    assert len(rows) == 8
    s3 = s3_server.client()
    for row in rows:
        image = Image.open(io.BytesIO(s3.get_object(data_bucket, row["key"]).read()))
        logits = session.run(["logits"], {"image": preprocess(image, spec)[None]})[0][0]
        probs = np.exp(logits) / np.exp(logits).sum()
        logged = [float(row[f"prob_{label}"]) for label in spec.labels]
        assert np.allclose(probs, logged, atol=1e-4)


def test_a_run_below_the_floor_stays_challenger_and_champion_is_unchanged(
    first_run, stack_env, client, tmp_path
):
    # Floor 1.0: only a perfect model could pass; 8 test images after one tiny epoch.
    summary = tmp_path / "summary.md"
    result = invoke(
        stack_env,
        *("train", "--config", str(TINY_CONFIG), "--dataset-version", VERSION),
        *("--floor", "1.0", "--summary", str(summary), "--require-promotion"),
    )
    second = json.loads(result.stdout.strip().splitlines()[-1])
    champion = client.get_model_version_by_alias(REGISTERED_MODEL, "champion").version
    challenger = client.get_model_version_by_alias(REGISTERED_MODEL, "challenger").version
    assert challenger == second["model_version"] != first_run["model_version"]
    run = client.get_run(second["run_id"])
    if second["test_accuracy"] < 1.0:
        assert result.exit_code == 1  # --require-promotion: the CI job fails
        assert second["promoted"] is False
        assert champion == first_run["model_version"]
        assert run.data.tags["promotion_decision"] == "not_promoted"
        assert "below the floor" in run.data.tags["promotion_reason"]
        assert "not promoted" in summary.read_text()
    else:  # a perfect model is >= any champion on the same split
        assert result.exit_code == 0
        assert second["promoted"] is True and champion == second["model_version"]
    assert "champion_test_accuracy" in run.data.metrics  # champion re-scored on this split


def test_same_data_and_seed_give_the_same_metrics(first_run, client):
    """The second run above used the same data and seed (only the floor differed)."""
    runs = client.search_runs(
        [client.get_run(first_run["run_id"]).info.experiment_id],
        f"tags.dataset_version = '{VERSION}'",
    )
    assert len(runs) >= 2
    for name in ("test_accuracy", "test_macro_f1"):
        assert {r.data.metrics[name] for r in runs[:2]} == {runs[0].data.metrics[name]}
    losses = [r.data.metrics["test_ece"] for r in runs[:2]]
    assert abs(losses[0] - losses[1]) < 1e-3  # documented tolerance: 1e-3 on probabilities


def test_promote_by_hand_then_rollback(first_run, stack_env, client):
    versions = sorted(
        int(v.version) for v in client.search_model_versions(f"name='{REGISTERED_MODEL}'")
    )
    assert len(versions) >= 2
    newest, oldest = str(versions[-1]), str(versions[0])
    assert invoke(stack_env, "promote", "--version", oldest).exit_code == 0
    assert invoke(stack_env, "promote", "--version", newest).exit_code == 0
    assert client.get_model_version_by_alias(REGISTERED_MODEL, "champion").version == newest
    result = invoke(stack_env, "rollback")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"champion": oldest}
    assert client.get_model_version_by_alias(REGISTERED_MODEL, "champion").version == oldest


def test_promoting_a_version_that_does_not_exist_is_refused(first_run, stack_env, client):
    before = client.get_model_version_by_alias(REGISTERED_MODEL, "champion").version
    result = invoke(stack_env, "promote", "--version", "999")
    assert result.exit_code == 2
    assert "999" in result.output
    assert client.get_model_version_by_alias(REGISTERED_MODEL, "champion").version == before


def test_datasets_lists_the_versions_in_s3(first_run, stack_env):
    result = invoke(stack_env, "datasets")
    assert result.exit_code == 0, result.output
    assert VERSION in result.stdout.split()
