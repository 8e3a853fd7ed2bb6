"""`create_app()`: the FastAPI application, its lifespan and middleware."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from plantops_inference_api import __version__
from plantops_inference_api.admission import Admission
from plantops_inference_api.api import api_router
from plantops_inference_api.auth import FailedKeyLimiter, parse_networks
from plantops_inference_api.batching import Batcher
from plantops_inference_api.config import Settings, get_settings, usable_cores
from plantops_inference_api.cpu_pool import CpuPool
from plantops_inference_api.errors import install_error_handlers
from plantops_inference_api.lifecycle import ModelManager
from plantops_inference_api.metrics import Metrics
from plantops_inference_api.middleware import (
    AdmissionControl,
    BodySizeLimitMiddleware,
    MetricsMiddleware,
    RequestIdMiddleware,
)
from plantops_inference_api.prediction_log import PredictionRecorder
from plantops_inference_api.service import PredictionService

DESCRIPTION = """
Classifies plant photos with the model version the MLflow alias (`champion`) points at,
on onnxruntime. Errors are JSON: `{"error": code, "message": text}`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    metrics = Metrics()
    manager = ModelManager(settings, metrics)
    # One pool for the CPU work of a prediction, decoding and inference alike (batching.py),
    # inference first (cpu_pool.py).
    cpu_pool = CpuPool(settings.preprocess_workers or usable_cores())
    batcher = Batcher(settings.inference_batch_size, metrics, cpu_pool.inference)
    admission = Admission(settings.max_in_flight, metrics)
    recorder = PredictionRecorder(settings, metrics)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        _configure_logging(settings.log_level)
        await batcher.start()
        await manager.start()
        await recorder.log.start()
        yield
        await manager.stop()
        await batcher.stop()
        await recorder.log.stop()  # after the batcher: the last predictions are in the buffer
        cpu_pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title="PlantOps inference API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.manager = manager
    app.state.batcher = batcher
    app.state.predictor = PredictionService(settings, batcher, cpu_pool.decode, metrics, recorder)
    app.state.prediction_log = recorder.log
    app.state.admission = admission
    app.state.key_limiter = FailedKeyLimiter(settings.reload_max_failures_per_minute)
    app.state.metrics_networks = parse_networks(settings.metrics_allowed_networks)

    def body_limit(path: str) -> int:
        # One image per /v1/predict; a full batch elsewhere. 64 KiB for multipart framing.
        framing = 64 * 1024
        if path == "/v1/predict":
            return settings.max_upload_bytes + framing
        return settings.max_request_bytes

    app.add_middleware(BodySizeLimitMiddleware, max_bytes_for=body_limit)
    app.add_middleware(
        AdmissionControl,
        admission=admission,
        paths=frozenset({"/v1/predict", "/v1/predict/batch"}),
    )
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # outermost: sees every answer
    install_error_handlers(app)
    app.include_router(api_router)
    return app


def _configure_logging(level: str) -> None:
    # Done at start-up, not import: uvicorn may already have configured the root logger.
    if not logging.getLogger().handlers:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("plantops_inference_api").setLevel(level)
    # httpx logs every MLflow poll at INFO: keep the log for what changes.
    logging.getLogger("httpx").setLevel(logging.WARNING)
