"""The champion resolved through the real MLflow server and downloaded from real S3.

Model versions are registered here the way training does (registrykit). The API
follows the alias: swaps without failing a request, keeps the old model when a new
one is broken, and starts (503, then ready) while MLflow or S3 is down.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from apiserver import running_api
from conftest import TEST_API_KEY, image_bytes
from fastapi.testclient import TestClient
from modelkit import write_model
from plantops_infra.processes import free_port
from registrykit import TcpProxy, api_env, move_alias, register_version, settings_from

from plantops_inference_api.main import create_app

pytestmark = pytest.mark.integration


@pytest.fixture
def model_name(mlflow_server, monkeypatch) -> str:
    """A registered-model name of this test only; the MLflow client's env for uploads."""
    for key, value in mlflow_server.env().items():
        monkeypatch.setenv(key, value)
    return f"plantops-test-{uuid.uuid4().hex[:8]}"


def wait_until(condition, timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_champion_is_resolved_downloaded_and_described(mlflow_server, model_name, tmp_path):
    version = register_version(
        mlflow_server.url,
        model_name,
        write_model(tmp_path / "v1"),
        tags={"dataset_version": "20261127T000000Z", "backbone": "test"},
        metrics={"test_accuracy": 0.925},
    )
    with TestClient(create_app(settings_from(api_env(mlflow_server, model_name)))) as client:
        assert client.get("/readyz").json() == {
            "status": "ready",
            "model_version": version,
            "reason": None,
        }
        info = client.get("/v1/model").json()
        assert info["name"] == model_name
        assert (info["version"], info["alias"]) == (version, "champion")
        assert info["dataset_version"] == "20261127T000000Z"
        assert info["test_accuracy"] == pytest.approx(0.925)
        assert info["run_id"]
        trained_at = datetime.fromisoformat(info["trained_at"])
        assert abs(datetime.now(UTC) - trained_at) < timedelta(hours=1)
        assert info["source_uri"].startswith(f"s3://{mlflow_server.artifact_bucket}/")
        assert info["source_uri"].endswith("/artifacts/model")
        body = client.post("/v1/predict", files={"file": ("b.jpg", image_bytes((9, 9, 230)))})
        assert body.json()["label"] == "blue"
        assert body.json()["model"] == {"name": model_name, "version": version, "alias": "champion"}


def test_a_champion_with_a_novelty_reference_is_downloaded_with_its_parameters(
    mlflow_server, model_name, tmp_path
):
    register_version(mlflow_server.url, model_name, write_model(tmp_path / "n", novelty=True))
    with TestClient(create_app(settings_from(api_env(mlflow_server, model_name)))) as client:
        assert client.get("/v1/model").json()["novelty"]["method"] == "knn_cosine"
        grey = client.post("/v1/predict", files={"file": ("g.jpg", image_bytes((128, 128, 128)))})
        assert grey.json()["out_of_distribution"] is True


def test_alias_move_swaps_the_model_without_failing_a_request(mlflow_server, model_name, tmp_path):
    v1 = register_version(mlflow_server.url, model_name, write_model(tmp_path / "v1"))
    four = ("rouge", "vert", "bleu", "jaune")
    v2 = register_version(
        mlflow_server.url, model_name, write_model(tmp_path / "v2", labels=four), alias=None
    )
    env = api_env(mlflow_server, model_name)
    with running_api(env, tmp_path / "api.log") as url:
        outcomes: list[tuple[int, str | None, int]] = []
        stop = threading.Event()

        def hammer() -> None:
            with httpx.Client(base_url=url, timeout=30) as http:
                while not stop.is_set():
                    r = http.post(
                        "/v1/predict", files={"file": ("g.png", image_bytes((9, 230, 9)))}
                    )
                    body = r.json()
                    n_labels = len(body.get("probabilities", {}))
                    outcomes.append((r.status_code, body.get("model", {}).get("version"), n_labels))

        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for thread in threads:
            thread.start()
        try:
            wait_until(lambda: len(outcomes) > 20, what="traffic on version 1")
            move_alias(mlflow_server.url, model_name, v2)
            wait_until(lambda: any(v == v2 for _, v, _ in outcomes[-4:]), what="the swap")
            time.sleep(0.5)  # traffic after the swap too
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        statuses = Counter(status for status, _, _ in outcomes)
        assert statuses == {200: len(outcomes)}
        # Each answer is whole: a version's own label count, never a mix.
        assert {(v, n) for _, v, n in outcomes} == {(v1, 3), (v2, 4)}
        metrics = httpx.get(f"{url}/metrics").text
        assert f'version="{v2}"' in metrics
        assert f'version="{v1}"' not in metrics


def test_a_broken_new_version_leaves_the_old_one_serving(mlflow_server, model_name, tmp_path):
    v1 = register_version(mlflow_server.url, model_name, write_model(tmp_path / "v1"))
    broken = write_model(tmp_path / "v2")
    (broken / "model.onnx").write_bytes(b"not an onnx model")
    env = api_env(mlflow_server, model_name)
    with TestClient(create_app(settings_from(env))) as client:
        register_version(mlflow_server.url, model_name, broken)  # the alias moves to it

        def failure_counted() -> bool:
            text = client.get("/metrics").text
            return 'plantops_api_model_load_failures_total{stage="verify"} 1.0' in text

        wait_until(failure_counted, what="the failed load in the metrics")
        assert client.get("/readyz").json()["model_version"] == v1
        answer = client.post("/v1/predict", files={"file": ("r.jpg", image_bytes())})
        assert answer.status_code == 200
        assert answer.json()["model"]["version"] == v1
        reload = client.post("/v1/model/reload", headers={"X-API-Key": TEST_API_KEY})
        assert reload.status_code == 503
        assert reload.json()["error"] == "reload_failed"
        v3 = register_version(mlflow_server.url, model_name, write_model(tmp_path / "v3"))
        wait_until(lambda: client.get("/readyz").json()["model_version"] == v3, what="v3")


def test_mlflow_down_at_start_gives_503_then_ready(mlflow_server, model_name, tmp_path):
    register_version(mlflow_server.url, model_name, write_model(tmp_path / "v1"))
    mlflow_port = int(mlflow_server.url.rsplit(":", 1)[1])
    proxy = TcpProxy("127.0.0.1", mlflow_port, free_port())  # MLflow "down" until started
    env = api_env(
        mlflow_server, model_name, PLANTOPS_MLFLOW_TRACKING_URI=f"http://127.0.0.1:{proxy.port}"
    )
    with running_api(env, tmp_path / "api.log", wait_ready=False) as url:
        ready = httpx.get(f"{url}/readyz")
        assert ready.status_code == 503
        assert "MLflow" in ready.json()["reason"] and "unreachable" in ready.json()["reason"]
        proxy.start()
        try:
            wait_until(lambda: httpx.get(f"{url}/readyz").status_code == 200, what="ready")
        finally:
            proxy.stop()


def test_s3_down_at_start_gives_503_then_ready(mlflow_server, model_name, tmp_path):
    register_version(mlflow_server.url, model_name, write_model(tmp_path / "v1"))
    proxy = TcpProxy("127.0.0.1", mlflow_server.s3.port, free_port())
    env = api_env(mlflow_server, model_name, PLANTOPS_S3_ENDPOINT=f"127.0.0.1:{proxy.port}")
    with TestClient(create_app(settings_from(env))) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert "cannot download" in ready.json()["reason"]
        proxy.start()
        try:
            wait_until(lambda: client.get("/readyz").status_code == 200, what="ready")
        finally:
            proxy.stop()
