"""The whole path in a real browser: headless Chromium (apt) driving the web app over HTTP."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from plantops_infra.processes import free_port, http_ok, spawn, wait_until
from playwright.sync_api import Browser, sync_playwright

from tests.conftest import env_settings
from tests.support import TEST_SECRET_KEY, WEBAPP_DIR

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
# `make screenshots` points this at docs/images (committed, shown in the README); a plain
# test run keeps its screenshots out of git.
SCREENSHOTS = Path(
    os.environ.get("PLANTOPS_WEBAPP_SCREENSHOTS", WEBAPP_DIR / "test-output" / "screenshots")
)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium` (see ENVIRONMENT.md).")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass(frozen=True)
class RunningWebapp:
    url: str
    log: Path


def start_webapp(tmp: Path, env: dict[str, str]) -> tuple[RunningWebapp, object]:
    """The web app as users get it: `plantops-webapp serve` in its own process."""
    port = free_port()
    cli = Path(sys.executable).parent / "plantops-webapp"
    log = tmp / "webapp.log"
    env = {"PLANTOPS_WEBAPP_SECRET_KEY": TEST_SECRET_KEY, "PLANTOPS_WEBAPP_PORT": str(port), **env}
    proc = spawn("webapp", [str(cli), "serve"], log, env)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: http_ok(f"{url}/healthz"), "the web app", 30, proc)
    return RunningWebapp(url, log), proc


@pytest.fixture
def live_webapp(
    tmp_path: Path, inference_api: str, s3_bucket, plants_db
) -> Iterator[RunningWebapp]:
    database, _ = plants_db
    env = {"PLANTOPS_API_URL": inference_api, **s3_bucket.env(), **database.env()}
    assert env_settings(env)  # the same variables the in-process tests use
    running, proc = start_webapp(tmp_path, env)
    yield running
    proc.stop()


@pytest.fixture
def webapp_without_api(tmp_path: Path) -> Iterator[RunningWebapp]:
    running, proc = start_webapp(tmp_path, {"PLANTOPS_API_URL": f"http://127.0.0.1:{free_port()}"})
    yield running
    proc.stop()
