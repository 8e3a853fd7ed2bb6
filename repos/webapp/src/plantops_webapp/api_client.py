"""The inference API over HTTP, with its failures turned into two kinds of error a page can show."""

from __future__ import annotations

from typing import TypeVar

import httpx
from pydantic import ValidationError

from plantops_webapp.schemas import ModelInfo, Prediction

Answer = TypeVar("Answer", Prediction, ModelInfo)


class ApiUnavailable(Exception):
    """The API cannot answer now (down, not ready, failing): the user can only retry later."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ApiBusy(ApiUnavailable):
    """The API is at its admission limit (503 + Retry-After): a retry in a moment will do."""

    def __init__(self, reason: str, retry_after_s: int) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class ApiRejected(Exception):
    """The API refused the request (4xx) with a message meant for the user."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def error_message(response: httpx.Response) -> str:
    """The readable message of an API error, whatever JSON shape it comes in."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("message", "detail", "error", "reason"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return value["message"]
            if isinstance(value, list) and value and isinstance(value[0], dict):
                # FastAPI's validation errors: a list of {"loc", "msg"}.
                return str(value[0].get("msg", "The request was not valid."))
    return f"The prediction service refused the request (HTTP {response.status_code})."


class InferenceClient:
    """Calls the three API endpoints the web app needs."""

    def __init__(self, http: httpx.AsyncClient, ready_timeout_s: float = 2.0) -> None:
        self._http = http
        self._ready_timeout = httpx.Timeout(ready_timeout_s)

    async def _send(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise ApiUnavailable("The prediction service did not answer in time.") from exc
        except httpx.TransportError as exc:
            raise ApiUnavailable("The prediction service cannot be reached.") from exc
        if response.status_code == 503 and "retry-after" in response.headers:
            raise ApiBusy(error_message(response), _retry_after(response))
        if response.status_code == 503:
            raise ApiUnavailable(f"The prediction service is not ready: {error_message(response)}")
        if response.status_code >= 500:
            raise ApiUnavailable(f"The prediction service failed (HTTP {response.status_code}).")
        if response.status_code >= 400:
            raise ApiRejected(response.status_code, error_message(response))
        return response

    async def predict(self, image: bytes, filename: str, content_type: str) -> Prediction:
        response = await self._send(
            "POST", "/v1/predict", files={"file": (filename, image, content_type)}
        )
        return _parse(Prediction, response)

    async def model_info(self) -> ModelInfo:
        return _parse(ModelInfo, await self._send("GET", "/v1/model"))

    async def ready(self) -> None:
        """Returns when the API says it is ready; raises `ApiUnavailable` otherwise.

        With its own short timeout: a hanging API must not hang the readiness probe.
        """
        await self._send("GET", "/readyz", timeout=self._ready_timeout)


def _retry_after(response: httpx.Response) -> int:
    value = response.headers.get("retry-after", "")
    return int(value) if value.isdigit() else 1


def _parse(schema: type[Answer], response: httpx.Response) -> Answer:
    try:
        return schema.model_validate(response.json())
    except (ValueError, ValidationError) as exc:
        raise ApiUnavailable(
            "The prediction service gave an answer this page cannot read."
        ) from exc
