"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from plantops_inference_api.deps import ManagerDep, MetricsAccessDep, MetricsDep
from plantops_inference_api.schemas import Health, Readiness

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is alive (it may not serve predictions yet: see /readyz)."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "No model loaded yet; `reason` says why."}},
)
def readyz(manager: ManagerDep) -> Readiness | JSONResponse:
    """Ready when a model is loaded; 503 with the reason (e.g. MLflow unreachable) until then."""
    model = manager.current
    if model is None:
        body = Readiness(status="not ready", reason=manager.not_ready_reason)
        return JSONResponse(body.model_dump(), status_code=503)
    return Readiness(status="ready", model_version=model.source.version)


@router.get("/metrics", response_class=Response, dependencies=[MetricsAccessDep])
def metrics(app_metrics: MetricsDep) -> Response:
    """Prometheus metrics (text exposition format)."""
    return Response(generate_latest(app_metrics.registry), media_type=CONTENT_TYPE_LATEST)
