"""Probes and metrics: /healthz (alive), /readyz (the API answers), /metrics (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from plantops_webapp.api_client import ApiUnavailable
from plantops_webapp.deps import ClientDep, MetricsDep

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive (says nothing about the inference API)."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(client: ClientDep) -> JSONResponse:
    """Ready when the inference API says it is ready; 503 with the reason otherwise."""
    try:
        await client.ready()
    except ApiUnavailable as exc:
        return JSONResponse({"status": "not ready", "reason": exc.reason}, status_code=503)
    return JSONResponse({"status": "ready"})


@router.get("/metrics")
async def metrics(app_metrics: MetricsDep) -> Response:
    """Prometheus metrics: requests, latency, predictions, feedback, API errors."""
    return Response(generate_latest(app_metrics.registry), media_type=CONTENT_TYPE_LATEST)
