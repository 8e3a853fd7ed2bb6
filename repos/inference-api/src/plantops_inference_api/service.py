"""From uploaded bytes to a `Prediction`: the work behind both predict routes.

Decoding and preprocessing run on the server's CPU pool (one thread per core: more would
only fight onnxruntime for the same cores); inference goes through the `Batcher`, which
runs its batches on the same pool, ahead of waiting decodes (cpu_pool.py), and lets a
batch that is not full wait for the images being decoded (batching.py).
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Executor

import numpy as np
from fastapi import UploadFile

from plantops_inference_api.batching import Batcher
from plantops_inference_api.config import Settings
from plantops_inference_api.errors import ClientError, ImageTooLarge
from plantops_inference_api.metrics import Metrics
from plantops_inference_api.model import LoadedModel, ModelOutput
from plantops_inference_api.prediction_log import PredictionRecorder
from plantops_inference_api.preprocessing import preprocess_bytes
from plantops_inference_api.schemas import ModelRef, Prediction


class PredictionService:
    def __init__(
        self,
        settings: Settings,
        batcher: Batcher,
        decode_pool: Executor,
        metrics: Metrics,
        recorder: PredictionRecorder | None = None,
    ) -> None:
        self.settings = settings
        self.batcher = batcher
        self.decode_pool = decode_pool
        self.metrics = metrics
        self.recorder = recorder or PredictionRecorder(settings, metrics)

    async def predict(self, upload: UploadFile, model: LoadedModel) -> Prediction:
        """Classify one uploaded file with `model`; a ClientError says what is wrong with it."""
        try:
            data = await self._read(upload)
            started = time.monotonic()
            with self.batcher.expect_image():  # queued below with no await in between
                image = await asyncio.get_running_loop().run_in_executor(
                    self.decode_pool, preprocess_bytes, data, model.spec, self.settings.image_budget
                )
            self.metrics.stage_latency.labels(stage="preprocess").observe(
                time.monotonic() - started
            )
        except ClientError as exc:
            self.metrics.rejected_images.labels(error=exc.code).inc()
            raise
        prediction = self._to_prediction(model, await self.batcher.predict(model, image))
        self.recorder.record(prediction, data, started)  # the log and novelty gauges; no I/O
        return prediction

    async def _read(self, upload: UploadFile) -> bytes:
        limit = self.settings.max_upload_bytes
        if upload.size is not None and upload.size > limit:
            raise ImageTooLarge(f"The file is {upload.size} bytes: at most {limit} are accepted.")
        return await upload.read()

    def _to_prediction(self, model: LoadedModel, output: ModelOutput) -> Prediction:
        probabilities = output.probabilities
        best = int(np.argmax(probabilities))
        label, confidence = model.labels[best], float(probabilities[best])
        self.metrics.predictions.labels(label=label).inc()
        self.metrics.confidence.observe(confidence)
        s = model.source
        novelty_score, out_of_distribution = novelty_fields(model, output.novelty_scores)
        return Prediction(
            label=label,
            confidence=confidence,
            probabilities={n: float(p) for n, p in zip(model.labels, probabilities, strict=True)},
            novelty_score=novelty_score,
            out_of_distribution=out_of_distribution,
            model=ModelRef(name=s.name, version=s.version, alias=s.alias),
        )


def novelty_fields(
    model: LoadedModel, score: np.ndarray | None
) -> tuple[float | None, bool | None]:
    """`novelty_score` and `out_of_distribution` of one prediction (null without a reference)."""
    if model.novelty is None or score is None:
        return None, None
    value = float(score)
    return value, value > model.novelty.spec.threshold
