"""Runs the API as a real uvicorn process on a free loopback port (tests and benchmark)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from plantops_infra.processes import free_port


@contextmanager
def running_api(env: dict[str, str], log_file: Path, wait_ready: bool = True) -> Iterator[str]:
    """Start `plantops-inference-api serve` (uvicorn with the deadlines, as `make run` and
    the image do); yield its base URL."""
    port = free_port()
    full_env = {**os.environ, "PLANTOPS_API_PORT": str(port), **env}
    command = [sys.executable, "-m", "plantops_inference_api.cli", "serve", "--host", "127.0.0.1"]
    with log_file.open("wb") as log:
        proc = subprocess.Popen(command, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url, "/readyz" if wait_ready else "/healthz", proc, log_file)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for(url: str, path: str, proc: subprocess.Popen, log_file: Path, timeout=60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the API exited with {proc.returncode}:\n{log_file.read_text()}")
        try:
            if httpx.get(url + path, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url}{path} not 200 after {timeout}s:\n{log_file.read_text()}")
