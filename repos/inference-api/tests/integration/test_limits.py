"""Slow clients, idle connections, overload and key guessing, against a real uvicorn
process over real sockets, started the way `make run` and the image start it."""

from __future__ import annotations

import io
import re
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from urllib.parse import urlparse

import httpx
import pytest
from apiserver import running_api
from conftest import TEST_API_KEY, image_bytes
from PIL import Image

pytestmark = pytest.mark.integration

READ_TIMEOUT_S = 1.0
MAX_IN_FLIGHT = 1
MAX_CONNECTIONS = 12
MULTIPART = {"content-type": "multipart/form-data; boundary=b"}


@pytest.fixture(scope="module")
def api_url(colour_model, tmp_path_factory) -> Iterator[str]:
    env = {
        "PLANTOPS_MODEL_PATH": str(colour_model),
        "PLANTOPS_API_KEY": TEST_API_KEY,
        "PLANTOPS_API_REQUEST_READ_TIMEOUT_S": str(READ_TIMEOUT_S),
        "PLANTOPS_API_KEEP_ALIVE_TIMEOUT_S": "1",
        "PLANTOPS_API_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
        "PLANTOPS_MAX_IN_FLIGHT": str(MAX_IN_FLIGHT),
        "PLANTOPS_PREPROCESS_WORKERS": "1",
        "PLANTOPS_RELOAD_MAX_FAILURES_PER_MINUTE": "3",
    }
    log = tmp_path_factory.mktemp("uvicorn-limits") / "api.log"
    with running_api(env, log) as url:
        yield url


@contextmanager
def connect(api_url: str) -> Iterator[socket.socket]:
    parsed = urlparse(api_url)
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


def multipart(image: bytes) -> tuple[bytes, bytes]:
    """(headers, body) of a POST /v1/predict with one file."""
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="p.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + image + b"\r\n--b--\r\n"
    )
    head = (
        b"POST /v1/predict HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    return head, body


def test_trickled_headers_are_cut_off_with_408(api_url):
    headers = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 200 + b"\r\n\r\n"
    with connect(api_url) as sock:
        sent = trickle(sock, headers, pause_s=0.05)  # 250 bytes at 20 B/s: 12 s in all
        reply = read_until_closed(sock)
    assert sent < len(headers)
    assert reply.startswith(b"HTTP/1.1 408")
    assert b'"error": "request_timeout"' in reply


def test_a_trickled_body_is_cut_off_and_the_request_never_served(api_url):
    head, body = multipart(image_bytes(fmt="PNG"))
    with connect(api_url) as sock:
        sock.sendall(head)
        sent = trickle(sock, body, pause_s=0.05)
        reply = read_until_closed(sock)
    assert sent < len(body)
    assert reply.startswith(b"HTTP/1.1 408")
    assert httpx.get(f"{api_url}/healthz").status_code == 200  # the server lives on


def test_a_connection_that_sends_nothing_is_closed(api_url):
    with connect(api_url) as sock:
        assert read_until_closed(sock).startswith(b"HTTP/1.1 408")


def test_an_idle_kept_alive_connection_is_closed_after_its_answer(api_url):
    with connect(api_url) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = read_until_closed(sock)  # one answer, then the server hangs up
    assert reply.startswith(b"HTTP/1.1 200")
    assert reply.count(b"HTTP/1.1") == 1


def test_a_whole_request_sent_at_once_is_served_on_the_same_connection_twice(api_url):
    head, body = multipart(image_bytes((10, 10, 220), fmt="PNG"))
    with connect(api_url) as sock:
        for _ in range(2):
            sock.sendall(head + body)
            reply = b""
            while b'"label"' not in reply:
                reply += sock.recv(65536)
            assert reply.startswith(b"HTTP/1.1 200") and b'"blue"' in reply


def big_png() -> bytes:
    # 12 Mpx that compress to little: slow to decode (most of a second), quick to send.
    buffer = io.BytesIO()
    Image.linear_gradient("L").resize((3500, 3500)).convert("RGB").save(buffer, "PNG")
    return buffer.getvalue()


def in_flight(api_url: str) -> float:
    metrics = httpx.get(f"{api_url}/metrics").text
    return float(re.search(r"^plantops_api_requests_in_flight ([0-9.]+)$", metrics, re.M)[1])


def test_beyond_the_admission_limit_503_with_retry_after_and_the_admitted_succeed(api_url):
    # One slot (MAX_IN_FLIGHT) and one decoding thread: a batch of 16 big images holds
    # the slot for seconds, time enough for a burst to meet a full server.
    photo = big_png()
    files = [("files", (f"{i}.png", photo, "image/png")) for i in range(16)]
    with ThreadPoolExecutor(1) as pool:
        batch = pool.submit(httpx.post, f"{api_url}/v1/predict/batch", files=files, timeout=120)
        deadline = time.monotonic() + 30
        while in_flight(api_url) < MAX_IN_FLIGHT and time.monotonic() < deadline:
            time.sleep(0.02)
        _, body = multipart(image_bytes((220, 10, 10), fmt="PNG"))
        burst = [
            httpx.post(f"{api_url}/v1/predict", content=body, headers=MULTIPART) for _ in range(5)
        ]
        admitted = batch.result()
    assert [r.status_code for r in burst] == [503] * 5
    assert all(r.headers["retry-after"] == "1" for r in burst)
    assert {r.json()["error"] for r in burst} == {"overloaded"}
    assert admitted.status_code == 200
    assert [r["error"] for r in admitted.json()["results"]] == [None] * 16
    metrics = httpx.get(f"{api_url}/metrics").text
    assert "plantops_api_admission_rejected_total 5.0" in metrics
    assert 'plantops_api_stage_duration_seconds_count{stage="inference"}' in metrics
    after = httpx.post(f"{api_url}/v1/predict", content=body, headers=MULTIPART)
    assert after.status_code == 200  # the slot is free again


def test_a_slow_upload_holds_no_admission_slot(api_url):
    head, body = multipart(image_bytes((10, 220, 10), fmt="PNG"))
    with connect(api_url) as slow:
        slow.sendall(head + body[:10])  # its body arrives slowly, or never
        time.sleep(0.3)
        others = [
            httpx.post(f"{api_url}/v1/predict", content=body, headers=MULTIPART) for _ in range(3)
        ]
    assert [r.status_code for r in others] == [200] * 3


def test_beyond_max_connections_requests_get_503(api_url):
    parsed = urlparse(api_url)
    address = (parsed.hostname, parsed.port)
    held = [socket.create_connection(address) for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.2)
        response = httpx.get(f"{api_url}/healthz")
    finally:
        for sock in held:
            sock.close()
    assert response.status_code == 503
    time.sleep(0.2)
    assert httpx.get(f"{api_url}/healthz").status_code == 200


def test_duplicate_key_headers_are_refused(api_url):
    headers = [("X-API-Key", TEST_API_KEY), ("X-API-Key", "other")]
    response = httpx.post(f"{api_url}/v1/model/reload", headers=headers)
    assert response.status_code == 400
    assert response.json()["error"] == "duplicate_api_key"


def test_a_burst_of_wrong_keys_gets_429_even_for_the_right_key_then(api_url):
    wrong = [
        httpx.post(f"{api_url}/v1/model/reload", headers={"X-API-Key": f"guess-{i}"})
        for i in range(6)
    ]
    assert [r.status_code for r in wrong] == [401, 401, 401, 429, 429, 429]
    assert int(wrong[-1].headers["retry-after"]) >= 1
    right = httpx.post(f"{api_url}/v1/model/reload", headers={"X-API-Key": TEST_API_KEY})
    assert right.status_code == 429  # locked out: guessing gains nothing
