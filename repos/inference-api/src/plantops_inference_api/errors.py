"""Domain errors and the one place they become HTTP responses.

Every error a client can cause is a `ClientError` with a status, a stable code and a
message that says what to do. Anything else is logged with its stack trace and
answered with a generic 500, so no internal message ever reaches a client.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class ClientError(Exception):
    """A request the API cannot serve, because of what the client sent or did."""

    status_code = 400
    code = "bad_request"
    headers: dict[str, str] | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidImage(ClientError):
    status_code = 422
    code = "invalid_image"


class ImageTooLarge(ClientError):
    status_code = 413
    code = "too_large"


class BadAspectRatio(ClientError):
    status_code = 422
    code = "bad_aspect_ratio"


class TooManyFiles(ClientError):
    status_code = 413
    code = "too_many_files"


class NotAuthorized(ClientError):
    status_code = 401
    code = "not_authorized"


class DuplicateApiKey(ClientError):
    status_code = 400
    code = "duplicate_api_key"


class TooManyAttempts(ClientError):
    status_code = 429
    code = "too_many_attempts"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after_s)}


class Overloaded(ClientError):
    status_code = 503
    code = "overloaded"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after_s)}


class MetricsForbidden(ClientError):
    status_code = 403
    code = "metrics_forbidden"


class ReloadDisabled(ClientError):
    status_code = 403
    code = "reload_disabled"


class ModelNotReady(ClientError):
    status_code = 503
    code = "model_not_ready"


class ModelLoadError(Exception):
    """A model version could not be resolved, downloaded or verified."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(f"{stage}: {message}")
        self.stage = stage  # registry | download | verify (a bounded metric label)
        self.message = message


class ReloadFailed(ClientError):
    status_code = 503
    code = "reload_failed"


HTTP_ERROR_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
HTTP_ERROR_MESSAGES = {
    404: "No such endpoint. The API is described at /docs.",
    405: "This endpoint does not take that HTTP method. The API is described at /docs.",
}


UPLOAD_HINTS = {
    "/v1/predict": " Send the image as the multipart/form-data file field 'file'.",
    "/v1/predict/batch": " Send the images as multipart/form-data file fields, each named 'files'.",
}


def error_body(code: str, message: str, **extra: object) -> dict:
    return {"error": code, "message": message, **extra}


def _describe_validation_error(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        if err.get("type") == "missing":
            parts.append(f"missing field '{where}'")
        else:
            parts.append(f"'{where}': {err.get('msg', 'invalid')}")
    return "Invalid request: " + "; ".join(parts) + "."


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ClientError)
    async def client_error(_: Request, exc: ClientError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, exc.message), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        message = _describe_validation_error(exc) + UPLOAD_HINTS.get(request.url.path, "")
        return JSONResponse(error_body("invalid_request", message), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = HTTP_ERROR_MESSAGES.get(exc.status_code) or (
            exc.detail if isinstance(exc.detail, str) else "Request refused."
        )
        code = HTTP_ERROR_CODES.get(exc.status_code, f"http_{exc.status_code}")
        return JSONResponse(
            error_body(code, message),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("Unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(
            error_body("internal_error", "The server failed to handle this request."),
            status_code=500,
        )
