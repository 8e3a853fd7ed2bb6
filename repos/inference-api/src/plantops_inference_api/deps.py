"""What a route handler needs, named as types (FastAPI dependencies).

All `async def`: none of them waits for anything, and FastAPI runs a plain `def`
dependency in its thread pool, a thread hop per dependency per request (on the one core
of a small replica, about a tenth of a prediction's CPU went to those hops).
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, Request

from plantops_inference_api.admission import Admission
from plantops_inference_api.auth import FailedKeyLimiter, address_in
from plantops_inference_api.config import Settings
from plantops_inference_api.errors import (
    DuplicateApiKey,
    MetricsForbidden,
    ModelNotReady,
    NotAuthorized,
    ReloadDisabled,
)
from plantops_inference_api.lifecycle import ModelManager
from plantops_inference_api.metrics import Metrics
from plantops_inference_api.model import LoadedModel
from plantops_inference_api.service import PredictionService


async def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_manager(request: Request) -> ModelManager:
    return request.app.state.manager


async def get_predictor(request: Request) -> PredictionService:
    return request.app.state.predictor


async def get_admission(request: Request) -> Admission:
    return request.app.state.admission


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


async def get_model(manager: Annotated[ModelManager, Depends(get_manager)]) -> LoadedModel:
    """The model serving now, captured once so one request never mixes two versions."""
    model = manager.current
    if model is None:
        raise ModelNotReady("No model is loaded yet; GET /readyz says why. Retry shortly.")
    return model


async def require_api_key(
    request: Request,
    settings: Annotated[Settings, Depends(get_app_settings)],
    x_api_key: Annotated[str | None, Header(description="The value of PLANTOPS_API_KEY.")] = None,
) -> None:
    if settings.api_key is None:
        raise ReloadDisabled("Reloading is disabled: the server has no PLANTOPS_API_KEY set.")
    if len(request.headers.getlist("x-api-key")) > 1:
        raise DuplicateApiKey("Send the X-API-Key header once.")
    limiter: FailedKeyLimiter = request.app.state.key_limiter
    client = request.client.host if request.client else "unknown"
    limiter.check(client)
    expected = settings.api_key.get_secret_value().encode()
    if x_api_key is None or not hmac.compare_digest(x_api_key.encode(), expected):
        limiter.record_failure(client)
        raise NotAuthorized("Missing or wrong API key: send it in the X-API-Key header.")


async def require_metrics_access(request: Request) -> None:
    """Only clients in PLANTOPS_METRICS_ALLOWED_NETWORKS (when set) may read /metrics."""
    networks = request.app.state.metrics_networks
    if networks and not address_in(request.client.host if request.client else None, networks):
        raise MetricsForbidden("/metrics is not served to this address.")


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
ManagerDep = Annotated[ModelManager, Depends(get_manager)]
PredictorDep = Annotated[PredictionService, Depends(get_predictor)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
AdmissionDep = Annotated[Admission, Depends(get_admission)]
ModelDep = Annotated[LoadedModel, Depends(get_model)]
ApiKeyDep = Depends(require_api_key)
MetricsAccessDep = Depends(require_metrics_access)
