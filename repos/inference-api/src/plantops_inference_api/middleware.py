"""Pure ASGI middleware: request metrics, admission control and the request body size limit."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from plantops_inference_api.metrics import Metrics


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
    """Bounds the prediction requests in the server (being served or queued) to `limit`.

    Beyond it a request is answered at once with 503 and `Retry-After`, before its body
    is read: refusing costs next to nothing, so under overload the server keeps its
    capacity for the requests it admitted instead of queueing without bound (latency
    growing and goodput falling for everyone). A batch request counts as one.
    """

    def __init__(self, app: ASGIApp, limit: int, paths: frozenset[str], metrics: Metrics) -> None:
        self.app = app
        self.limit = limit
        self.paths = paths
        self.metrics = metrics
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            self.metrics.admission_rejected.inc()
            await self._refuse(send)
            return
        self.in_flight += 1
        self.metrics.in_flight.set(self.in_flight)
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.in_flight -= 1
                self.metrics.in_flight.set(self.in_flight)

        async def send_and_release(message: Message) -> None:
            await send(message)
            # The slot is free once the answer is out: the clean-up FastAPI does after
            # it (closing the uploaded files) must not refuse the client's next request.
            if message["type"] == "http.response.body" and not message.get("more_body"):
                release()

        try:
            await self.app(scope, receive, send_and_release)
        finally:
            release()

    async def _refuse(self, send: Send) -> None:
        message = (
            f"The API is busy: {self.limit} requests are already in progress. Retry in a moment."
        )
        body = json.dumps({"error": "overloaded", "message": message}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", b"1"),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})
