"""Pure ASGI middleware: request metrics, admission control and the request body size limit."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from plantops_inference_api.admission import RETRY_AFTER_S, Admission
from plantops_inference_api.metrics import Metrics
from plantops_inference_api.prediction_log import REQUEST_ID

# A client's own X-Request-ID is kept when it is this plain; anything else gets a new one.
_CLIENT_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._-]{1,64}$")


class MetricsMiddleware:
    """Counts and times every request by route template (never the raw path)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            labels = {"route": route, "method": scope["method"], "status": str(status)}
            self.metrics.requests.labels(**labels).inc()
            self.metrics.latency.labels(**labels).observe(time.perf_counter() - start)


class RequestIdMiddleware:
    """Names each request (X-Request-ID in and out): the prediction log's `request_id`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"")
        request_id = given.decode() if _CLIENT_REQUEST_ID.match(given) else uuid.uuid4().hex
        token = REQUEST_ID.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)


class BodySizeLimitMiddleware:
    """Refuses a request body over the path's limit with 413 before it is parsed or stored."""

    def __init__(self, app: ASGIApp, max_bytes_for: Callable[[str], int]) -> None:
        self.app = app
        self.max_bytes_for = max_bytes_for

    @staticmethod
    def _message(limit: int) -> str:
        return (
            f"The request body is larger than {limit} bytes. "
            "Send smaller images or fewer of them per request."
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(send, limit)
            return
        received = 0

        async def counting_receive() -> Message:
            # A chunked body declares no length: count what arrives.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, self._message(limit))
            return message

        await self.app(scope, counting_receive, send)

    async def _refuse(self, send: Send, limit: int) -> None:
        body = json.dumps({"error": "too_large", "message": self._message(limit)}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class AdmissionControl:
    """Refuses a prediction request from its headers, before its body is read, while
    every admission slot is taken (admission.py): 503 and `Retry-After`."""

    def __init__(self, app: ASGIApp, admission: Admission, paths: frozenset[str]) -> None:
        self.app = app
        self.admission = admission
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths or not self.admission.full:
            await self.app(scope, receive, send)
            return
        self.admission.refused()
        message = self.admission.refusal_message()
        body = json.dumps({"error": "overloaded", "message": message}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(RETRY_AFTER_S).encode()),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})
