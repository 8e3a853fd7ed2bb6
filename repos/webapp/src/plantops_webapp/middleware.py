"""ASGI middleware: security headers, request metrics, the request body size limit, the
visitor cookie, and the same-origin check on every POST."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from plantops_webapp import visitors
from plantops_webapp.metrics import WebappMetrics

# No inline scripts or styles anywhere: everything comes from /static.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)


def route_template(scope: Scope) -> str:
    """The matched route's template (`/results/{upload_id}`), never the raw path."""
    route = scope.get("route")
    if route is not None and hasattr(route, "path"):
        return route.path
    if scope.get("path", "").startswith("/static/"):
        return "/static"
    return "unmatched"


class RequestMetrics:
    def __init__(self, app: ASGIApp, metrics: WebappMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route, method = route_template(scope), scope["method"]
            self.metrics.requests.labels(route, method, str(status)).inc()
            self.metrics.latency.labels(route, method).observe(time.perf_counter() - started)


class BodyTooLarge(Exception):
    """The request body grew past the limit while it was being read."""


class BodySizeLimit:
    """Refuse a body over `max_bytes` before reading it whole.

    A declared Content-Length over the limit is refused before any byte is read; a
    chunked body is counted as it arrives and refused as soon as it passes the limit.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        too_large: Callable[[Request], Awaitable[Response]],
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.too_large = too_large

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if response_started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.too_large(Request(scope, receive))
        # Tell the client we will not read the rest of its body.
        response.headers["connection"] = "close"
        await response(scope, receive, send)


VISITOR_COOKIE_MAX_AGE_S = 30 * 24 * 3600


def cookie_value(scope: Scope, name: str) -> str | None:
    raw = b"; ".join(value for key, value in scope["headers"] if key == b"cookie")
    cookies: SimpleCookie = SimpleCookie()
    try:
        cookies.load(raw.decode("latin-1"))
    except Exception:  # a malformed Cookie header is treated as no cookie
        return None
    morsel = cookies.get(name)
    return morsel.value if morsel else None


class VisitorCookie:
    """Give every browser a random visitor id (cookie), available to the handlers at once.

    The id is the session the CSRF tokens are bound to, so the very first page a browser
    gets already carries valid tokens.
    """

    def __init__(self, app: ASGIApp, secure: bool) -> None:
        self.app = app
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        existing = cookie_value(scope, visitors.COOKIE_NAME)
        visitor = existing if visitors.is_visitor_id(existing) else visitors.new_visitor_id()
        scope.setdefault("state", {})[visitors.STATE_KEY] = visitor
        if visitor == existing:
            await self.app(scope, receive, send)
            return
        attributes = f"; Max-Age={VISITOR_COOKIE_MAX_AGE_S}; Path=/; HttpOnly; SameSite=Lax"
        if self.secure or scope.get("scheme") == "https":
            attributes += "; Secure"
        header = (b"set-cookie", f"{visitors.COOKIE_NAME}={visitor}{attributes}".encode())

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        await self.app(scope, receive, send_with_cookie)


UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class SameOriginPosts:
    """Refuse a POST whose `Origin` (or, without one, `Referer`) is not this site.

    Browsers send `Origin` with every cross-site POST, so a form on another site is refused
    here before the handler runs, whatever cookies it carries. A POST with neither header
    (no browser sends one like that) is refused too. The site is the request's own Host,
    plus `allowed_origins` (the public URL when a proxy rewrites Host).
    """

    def __init__(
        self,
        app: ASGIApp,
        allowed_origins: list[str],
        refuse: Callable[[Request], Awaitable[Response]],
    ) -> None:
        self.app = app
        self.allowed = {origin.rstrip("/").lower() for origin in allowed_origins}
        self.refuse = refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in UNSAFE_METHODS:
            await self.app(scope, receive, send)
            return
        if self.same_origin(scope):
            await self.app(scope, receive, send)
            return
        response = await self.refuse(Request(scope, receive))
        await response(scope, receive, send)

    def same_origin(self, scope: Scope) -> bool:
        headers = dict(scope["headers"])
        source = headers.get(b"origin") or headers.get(b"referer")
        if not source:
            return False
        parts = urlsplit(source.decode("latin-1").strip())
        if not parts.scheme or not parts.netloc:
            return False  # "null" (a sandboxed or privacy-stripped origin) included
        origin = f"{parts.scheme}://{parts.netloc}".lower()
        host = headers.get(b"host", b"").decode("latin-1").lower()
        return parts.netloc.lower() == host or origin in self.allowed
