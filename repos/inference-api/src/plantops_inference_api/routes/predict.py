"""Predictions: one image, or several in one request."""

from __future__ import annotations

import asyncio
from typing import Annotated

import numpy as np
from fastapi import APIRouter, File, UploadFile
from starlette.concurrency import run_in_threadpool

from plantops_inference_api.deps import BatcherDep, MetricsDep, ModelDep, SettingsDep
from plantops_inference_api.errors import ClientError, ImageTooLarge, TooManyFiles
from plantops_inference_api.metrics import Metrics
from plantops_inference_api.model import LoadedModel
from plantops_inference_api.preprocessing import preprocess_bytes
from plantops_inference_api.schemas import (
    BatchItem,
    BatchResponse,
    ErrorResponse,
    ModelRef,
    Prediction,
)

router = APIRouter(prefix="/v1", tags=["predictions"])

ERRORS = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in {
        413: "The file (or the request) is over the size or pixel limit.",
        422: "Not an image this API reads, an empty or truncated file, or a missing field.",
        503: "No model is loaded yet.",
    }.items()
}


async def _read_image(upload: UploadFile, settings: SettingsDep) -> bytes:
    if upload.size is not None and upload.size > settings.max_upload_bytes:
        raise ImageTooLarge(
            f"The file is {upload.size} bytes: at most {settings.max_upload_bytes} are accepted."
        )
    return await upload.read()


async def _predict_one(
    upload: UploadFile, model: LoadedModel, settings: SettingsDep, batcher: BatcherDep, m: Metrics
) -> Prediction:
    try:
        data = await _read_image(upload, settings)
        image = await run_in_threadpool(
            preprocess_bytes, data, model.spec, settings.max_image_pixels
        )
    except ClientError as exc:
        m.rejected_images.labels(error=exc.code).inc()
        raise
    probabilities = await batcher.probabilities(model, image)
    return _to_prediction(model, probabilities, m)


def _to_prediction(model: LoadedModel, probabilities: np.ndarray, m: Metrics) -> Prediction:
    best = int(np.argmax(probabilities))
    label, confidence = model.labels[best], float(probabilities[best])
    m.predictions.labels(label=label).inc()
    m.confidence.observe(confidence)
    s = model.source
    return Prediction(
        label=label,
        confidence=confidence,
        probabilities={name: float(p) for name, p in zip(model.labels, probabilities, strict=True)},
        model=ModelRef(name=s.name, version=s.version, alias=s.alias),
    )


@router.post("/predict", response_model=Prediction, responses=ERRORS)
async def predict(
    file: Annotated[UploadFile, File(description="One image (JPEG, PNG, WebP, GIF, BMP, TIFF).")],
    model: ModelDep,
    settings: SettingsDep,
    batcher: BatcherDep,
    metrics: MetricsDep,
) -> Prediction:
    """Classify one image: the most probable label, its confidence and every label's probability.

    The format is read from the bytes, whatever the client claims. The image is
    EXIF-rotated, converted to RGB and preprocessed exactly as the model's
    `preprocessing.json` says.
    """
    return await _predict_one(file, model, settings, batcher, metrics)


@router.post("/predict/batch", response_model=BatchResponse, responses=ERRORS)
async def predict_batch(
    files: Annotated[list[UploadFile], File(description="Up to PLANTOPS_MAX_BATCH_SIZE images.")],
    model: ModelDep,
    settings: SettingsDep,
    batcher: BatcherDep,
    metrics: MetricsDep,
) -> BatchResponse:
    """Classify several images (repeat the multipart field `files`); one result per file, in order.

    A bad file gets its own `error` and does not fail the others.
    """
    if len(files) > settings.max_batch_size:
        raise TooManyFiles(
            f"{len(files)} files sent: at most {settings.max_batch_size} per request."
        )

    async def one(index: int, upload: UploadFile) -> BatchItem:
        try:
            prediction = await _predict_one(upload, model, settings, batcher, metrics)
        except ClientError as exc:
            error = ErrorResponse(error=exc.code, message=exc.message)
            return BatchItem(index=index, filename=upload.filename, error=error)
        return BatchItem(index=index, filename=upload.filename, prediction=prediction)

    results = await asyncio.gather(*(one(i, f) for i, f in enumerate(files)))
    return BatchResponse(results=list(results))
