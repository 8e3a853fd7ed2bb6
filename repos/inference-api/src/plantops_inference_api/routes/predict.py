"""Predictions: one image, or several in one request."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, File, UploadFile

from plantops_inference_api.contract_files import accepted_formats
from plantops_inference_api.deps import AdmissionDep, ModelDep, PredictorDep, SettingsDep
from plantops_inference_api.errors import ClientError, TooManyFiles
from plantops_inference_api.preprocessing import ACCEPTED_NAMES
from plantops_inference_api.schemas import BatchItem, BatchResponse, ErrorResponse, Prediction

router = APIRouter(prefix="/v1", tags=["predictions"])

# Typed as FastAPI's `responses=` parameter (dict is invariant: an inferred
# dict[int, dict[str, object]] would not match it).
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in {
        413: "The file (or the request) is over the size or pixel limit.",
        422: "Not an image this API reads, an empty or truncated file, or a missing field.",
        503: "No model is loaded yet, or the server is full (`overloaded`, with Retry-After).",
    }.items()
}


# contracts/image-formats.json, in the OpenAPI too: consumers read the formats from it.
FORMATS_EXTRA = {"x-accepted-formats": accepted_formats()}


@router.post("/predict", response_model=Prediction, responses=ERRORS, openapi_extra=FORMATS_EXTRA)
async def predict(
    file: Annotated[UploadFile, File(description=f"One image ({ACCEPTED_NAMES}).")],
    model: ModelDep,
    predictor: PredictorDep,
    admission: AdmissionDep,
) -> Prediction:
    """Classify one image: the most probable label, its confidence and every label's probability.

    The format is read from the bytes, whatever the client claims. The image is
    EXIF-rotated, converted to RGB and preprocessed exactly as the model's
    `preprocessing.json` says.
    """
    async with admission.slot():
        return await predictor.predict(file, model)


@router.post(
    "/predict/batch", response_model=BatchResponse, responses=ERRORS, openapi_extra=FORMATS_EXTRA
)
async def predict_batch(
    files: Annotated[list[UploadFile], File(description="Up to PLANTOPS_MAX_BATCH_SIZE images.")],
    model: ModelDep,
    predictor: PredictorDep,
    settings: SettingsDep,
    admission: AdmissionDep,
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
            prediction = await predictor.predict(upload, model)
        except ClientError as exc:
            error = ErrorResponse(error=exc.code, message=exc.message)
            return BatchItem(index=index, filename=upload.filename, error=error)
        return BatchItem(index=index, filename=upload.filename, prediction=prediction)

    async with admission.slot():
        results = await asyncio.gather(*(one(i, f) for i, f in enumerate(files)))
    return BatchResponse(results=list(results))
