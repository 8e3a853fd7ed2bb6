"""CSRF protection by a signed double-submit token.

The same token travels in a cookie and in a hidden form field; a POST is accepted only
when both are present, equal, and signed with the app's secret key. Another site can
make the browser send the cookie but cannot read it to fill the form field, and the
signature stops a token planted in the cookie by someone else (cookie tossing).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

COOKIE_NAME = "plantops_csrf"
FIELD_NAME = "csrf_token"


def _signature(secret_key: str, nonce: str) -> str:
    return hmac.new(secret_key.encode(), nonce.encode(), hashlib.sha256).hexdigest()


def new_token(secret_key: str) -> str:
    nonce = secrets.token_urlsafe(24)
    return f"{nonce}.{_signature(secret_key, nonce)}"


def is_signed(secret_key: str, token: str | None) -> bool:
    if not token or token.count(".") != 1:
        return False
    nonce, signature = token.split(".")
    return hmac.compare_digest(signature, _signature(secret_key, nonce))


def is_valid(secret_key: str, cookie_token: str | None, form_token: str | None) -> bool:
    """A form's token matches the cookie's and carries our signature."""
    if not cookie_token or not form_token:
        return False
    return hmac.compare_digest(cookie_token, form_token) and is_signed(secret_key, cookie_token)
