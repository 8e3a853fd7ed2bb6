"""Who is asking, without knowing who they are: the visitor cookie and the submitter id.

Every browser gets a random visitor cookie on its first request (`VisitorCookie`
middleware). It is the session the CSRF tokens are bound to and, with the client address,
what the rate limits and the pending uploads are keyed by. The id stored with feedback is
a keyed hash of both (HMAC-SHA256 with the app's secret key): it counts one submitter's
pending items, and neither the address nor the cookie can be read back from it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from starlette.requests import Request

COOKIE_NAME = "plantops_visitor"
# secrets.token_urlsafe(24): 32 characters. Anything else is replaced by a fresh id.
VISITOR_ID = re.compile(r"^[A-Za-z0-9_-]{32}$")
# The visitor id for this request, set by the middleware in the ASGI scope's state.
STATE_KEY = "visitor_id"


def new_visitor_id() -> str:
    return secrets.token_urlsafe(24)


def is_visitor_id(value: str | None) -> bool:
    return bool(value and VISITOR_ID.match(value))


def visitor_id(request: Request) -> str:
    """This request's visitor id; empty outside the middleware (no form then validates)."""
    return str(request.scope.get("state", {}).get(STATE_KEY, ""))


def client_address(request: Request) -> str:
    """The peer address, or the proxy's X-Forwarded-For when uvicorn trusts that proxy."""
    return request.client.host if request.client else "unknown"


def _keyed(secret_key: str, purpose: str, *parts: str) -> str:
    message = "\n".join((purpose, *parts)).encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()


def visitor_key(request: Request, secret_key: str) -> str:
    """The visitor's key for limits and pending uploads: cookie + address, hashed."""
    return _keyed(secret_key, "visitor", visitor_id(request), client_address(request))


def submitter_id(request: Request, secret_key: str) -> str:
    """The pseudonymous id stored with feedback (64 hex digits)."""
    return _keyed(secret_key, "submitter", visitor_id(request), client_address(request))


def address_key(request: Request, secret_key: str) -> str:
    return _keyed(secret_key, "address", client_address(request))
