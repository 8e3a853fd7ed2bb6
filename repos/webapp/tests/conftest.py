"""Fixtures: the real inference API on a tiny ONNX model, the web app's settings and client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from plantops_infra.processes import ManagedProcess, free_port, http_ok, spawn, wait_until

from plantops_webapp.config import Settings
from plantops_webapp.main import create_app
from tests.support import (
    INFERENCE_API_DIR,
    ORIGIN,
    STAND_IN_NOVELTY,
    TEST_SECRET_KEY,
    NoveltyStandIn,
    create_plants_data,
    write_tiny_model,
)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="session")
def inference_api(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[str]:
    """Base URL of a real inference API process serving the tiny model (no MLflow)."""
    env = {"PLANTOPS_MODEL_PATH": str(tiny_model_dir), "PLANTOPS_ONNX_THREADS": "1"}
    log = tmp_path_factory.mktemp("inference-api") / "api.log"
    url, proc = start_inference_api(env, log)
    yield url
    proc.stop()


def start_inference_api(env: dict[str, str], log: Path) -> tuple[str, ManagedProcess]:
    """`plantops-inference-api serve` from the API's own venv, as `make run` starts it."""
    cli = INFERENCE_API_DIR / ".venv" / "bin" / "plantops-inference-api"
    if not cli.is_file():
        pytest.fail(f"{cli} is missing: run `make -C {INFERENCE_API_DIR} setup` first.")
    port = free_port()
    argv = [str(cli), "serve", "--host", "127.0.0.1", "--port", str(port)]
    proc = spawn("inference-api", argv, log, env)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: http_ok(f"{url}/readyz"), "the inference API", 60, proc)
    return url, proc


def make_settings(api_url: str, **overrides: object) -> Settings:
    """Settings for a test app, independent of the developer's environment."""
    values: dict[str, object] = {"api_url": api_url, "webapp_secret_key": TEST_SECRET_KEY}
    for name, value in overrides.items():
        values[name] = value
    return Settings(**values)


def site_client(app, **kwargs) -> TestClient:
    """A TestClient whose requests carry this site's Origin, as a browser's form posts do."""
    return TestClient(app, headers={"origin": ORIGIN}, **kwargs)


def env_settings(env: dict[str, str]) -> dict[str, str]:
    """`PLANTOPS_S3_BUCKET` → `s3_bucket`: a fixture's env() as Settings fields."""
    prefix = "PLANTOPS_"
    return {k.removeprefix(prefix).lower(): v for k, v in env.items() if k.startswith(prefix)}


@pytest.fixture
def plants_db(mysql_database):
    """A test database with the canonical `plants_data` columns."""
    connection = mysql_database.connect()
    create_plants_data(connection)
    yield mysql_database, connection
    connection.close()


@pytest.fixture
def webapp(inference_api: str, s3_bucket, plants_db) -> Iterator[TestClient]:
    """The web app in-process, talking to the real API, S3 bucket and database."""
    database, _ = plants_db
    settings = make_settings(
        inference_api, **env_settings(s3_bucket.env()), **env_settings(database.env())
    )
    with site_client(create_app(settings)) as client:
        yield client


@pytest.fixture(scope="session")
def novelty_api(inference_api: str) -> Iterator[NoveltyStandIn]:
    """The real API behind a stand-in that adds the novelty fields (see NoveltyStandIn)."""
    stand_in = NoveltyStandIn(inference_api)
    yield stand_in
    stand_in.close()


@pytest.fixture
def novelty(novelty_api: NoveltyStandIn) -> Iterator[NoveltyStandIn]:
    """novelty_api, its verdict back to "out of distribution" after each test."""
    yield novelty_api
    novelty_api.verdict = (9.25, True)
    novelty_api.model_novelty = dict(STAND_IN_NOVELTY)
