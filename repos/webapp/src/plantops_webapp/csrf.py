"""CSRF protection: a form token bound to the visitor's session and to what the form does.

The token is HMAC-SHA256(secret key, session id + purpose), where the session id is the
visitor cookie (`visitors.py`) and the purpose names the form (`upload`,
`feedback:<upload id>`, `sign-in`, `review:<reviewer>`). Another site can make the browser
send the cookie but cannot read a page to learn the token, a token taken from one session
or one upload is worthless for another, and no token is stored on the server. Every POST
is also checked for a same-origin `Origin` or `Referer` (`middleware.SameOriginPosts`).
"""

from __future__ import annotations

import hashlib
import hmac

FIELD_NAME = "csrf_token"

UPLOAD = "upload"
SIGN_IN = "sign-in"


def feedback_purpose(upload_id: str) -> str:
    return f"feedback:{upload_id}"


def review_purpose(reviewer: str) -> str:
    return f"review:{reviewer}"


def token(secret_key: str, session_id: str, purpose: str) -> str:
    message = f"csrf\n{session_id}\n{purpose}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()


def is_valid(secret_key: str, session_id: str, purpose: str, form_token: object) -> bool:
    """The form's token is the one this session got for this purpose."""
    if not isinstance(form_token, str) or not session_id:
        return False
    return hmac.compare_digest(form_token, token(secret_key, session_id, purpose))
