"""The body size limit refuses a big upload before reading it whole (plain ASGI calls)."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from plantops_webapp.middleware import BodySizeLimit

pytestmark = pytest.mark.unit

CHUNK = b"x" * 1000


async def reads_everything(scope, receive, send):
    request = Request(scope, receive)
    body = await request.body()
    await PlainTextResponse(f"read {len(body)}")(scope, receive, send)


async def too_large(_: Request) -> Response:
    return PlainTextResponse("too large", status_code=413)


def call(headers: list[tuple[bytes, bytes]], chunks: int) -> tuple[int, int]:
    """Send `chunks` chunks through the middleware; return (status, chunks the app pulled)."""
    pulled = 0
    sent: list[dict] = []

    async def receive():
        nonlocal pulled
        pulled += 1
        more = pulled < chunks
        return {"type": "http.request", "body": CHUNK, "more_body": more}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/predict", "headers": headers}
    app = BodySizeLimit(reads_everything, max_bytes=5000, too_large=too_large)
    # A thread of its own: the browser tests' Playwright keeps an event loop in this one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, app(scope, receive, send)).result()
    return sent[0]["status"], pulled


def test_a_declared_length_over_the_limit_is_refused_before_reading():
    status, pulled = call([(b"content-length", b"100000")], chunks=100)
    assert status == 413
    assert pulled == 0


def test_a_chunked_body_is_cut_off_as_soon_as_it_passes_the_limit():
    status, pulled = call([(b"transfer-encoding", b"chunked")], chunks=100)
    assert status == 413
    assert pulled == 6  # 6 x 1000 bytes > 5000; the other 94 chunks are never read


def test_a_body_within_the_limit_reaches_the_app():
    status, pulled = call([(b"content-length", b"3000")], chunks=3)
    assert status == 200
    assert pulled == 3
