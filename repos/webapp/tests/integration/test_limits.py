"""Slow clients, a hanging or overloaded API: real uvicorn processes over real sockets."""

from __future__ import annotations

import io
import re
import socket
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from plantops_infra.processes import free_port, http_ok, spawn, wait_until

from plantops_webapp.main import create_app
from tests.conftest import make_settings, site_client, start_inference_api
from tests.support import TEST_SECRET_KEY, csrf_token_in, photo

pytestmark = pytest.mark.integration


@contextmanager
def connect(url: str) -> Iterator[socket.socket]:
    parsed = urlparse(url)
    with socket.create_connection((parsed.hostname, parsed.port), timeout=10) as sock:
        yield sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (socket timeout: 10 s, a failure)."""
    reply = b""
    while chunk := sock.recv(65536):
        reply += chunk
    return reply


def trickle(sock: socket.socket, data: bytes, pause_s: float) -> int:
    """Send `data` a byte at a time; the number of bytes sent before the server hung up."""
    for sent, byte in enumerate(data):
        try:
            sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            return sent
        time.sleep(pause_s)
    return len(data)


@pytest.fixture(scope="module")
def served_webapp(tmp_path_factory) -> Iterator[str]:
    """`plantops-webapp serve` with a 1 s request deadline and keep-alive."""
    port = free_port()
    cli = Path(sys.executable).parent / "plantops-webapp"
    env = {
        "PLANTOPS_WEBAPP_SECRET_KEY": TEST_SECRET_KEY,
        "PLANTOPS_WEBAPP_PORT": str(port),
        "PLANTOPS_API_URL": f"http://127.0.0.1:{free_port()}",
        "PLANTOPS_WEBAPP_REQUEST_READ_TIMEOUT_S": "1",
        "PLANTOPS_WEBAPP_KEEP_ALIVE_TIMEOUT_S": "1",
    }
    log = tmp_path_factory.mktemp("webapp-limits") / "webapp.log"
    proc = spawn("webapp", [str(cli), "serve"], log, env)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: http_ok(f"{url}/healthz"), "the web app", 30, proc)
    yield url
    proc.stop()


def test_trickled_headers_are_cut_off_with_408(served_webapp):
    headers = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"
    with connect(served_webapp) as sock:
        sent = trickle(sock, headers, pause_s=0.05)
        reply = read_until_closed(sock)
    assert sent < len(headers)
    assert reply.startswith(b"HTTP/1.1 408")


def test_a_trickled_upload_is_cut_off(served_webapp):
    body = b"--b\r\n" + b"x" * 300
    head = (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nOrigin: http://x\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\n"
        b"Content-Length: " + str(len(body) + 100).encode() + b"\r\n\r\n"
    )
    with connect(served_webapp) as sock:
        sock.sendall(head)
        sent = trickle(sock, body, pause_s=0.05)
        reply = read_until_closed(sock)
    assert sent < len(body)
    assert reply.startswith(b"HTTP/1.1 408")


def test_silent_and_idle_connections_are_closed(served_webapp):
    with connect(served_webapp) as silent:
        assert read_until_closed(silent).startswith(b"HTTP/1.1 408")
    with connect(served_webapp) as idle:
        idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = read_until_closed(idle)  # one answer, then the server hangs up
    assert reply.startswith(b"HTTP/1.1 200") and reply.count(b"HTTP/1.1") == 1


@pytest.fixture
def hanging_api() -> Iterator[str]:
    """A TCP server that accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for sock in accepted:
        sock.close()
    listener.close()


def test_readiness_answers_503_quickly_when_the_api_hangs(hanging_api):
    settings = make_settings(hanging_api, api_ready_timeout_s=0.5)
    with TestClient(create_app(settings)) as client:
        ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["reason"] == "The prediction service did not answer in time."


@pytest.fixture(scope="module")
def full_api(tmp_path_factory, tiny_model_dir) -> Iterator[str]:
    """An inference API admitting one prediction at a time, decoding one image at a time."""
    env = {
        "PLANTOPS_MODEL_PATH": str(tiny_model_dir),
        "PLANTOPS_MAX_IN_FLIGHT": "1",
        "PLANTOPS_PREPROCESS_WORKERS": "1",
    }
    url, proc = start_inference_api(env, tmp_path_factory.mktemp("full-api") / "api.log")
    yield url
    proc.stop()


def api_in_flight(api_url: str) -> float:
    metrics = httpx.get(f"{api_url}/metrics").text
    return float(re.search(r"^plantops_api_requests_in_flight ([0-9.]+)$", metrics, re.M)[1])


def test_an_overloaded_api_gives_the_busy_page(full_api):
    # A batch of 16 big images (slow to decode, quick to send) holds the API's only slot.
    buffer = io.BytesIO()
    Image.linear_gradient("L").resize((3500, 3500)).convert("RGB").save(buffer, "PNG")
    files = [("files", (f"{i}.png", buffer.getvalue(), "image/png")) for i in range(16)]
    with ThreadPoolExecutor(1) as pool, site_client(create_app(make_settings(full_api))) as client:
        batch = pool.submit(httpx.post, f"{full_api}/v1/predict/batch", files=files, timeout=120)
        deadline = time.monotonic() + 30
        while api_in_flight(full_api) < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        token = csrf_token_in(client.get("/").text)
        photo_files = {"file": ("plant.jpg", photo().read_bytes(), "image/jpeg")}
        answer = client.post("/predict", data={"csrf_token": token}, files=photo_files)
        assert batch.result().status_code == 200
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "1"
    assert "Busy, try again in a moment" in answer.text
    assert 'href="/"' in answer.text
