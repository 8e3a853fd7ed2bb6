"""The durable prediction log: one JSON record per prediction, written to S3 in background.

A request only appends its record to a bounded in-memory buffer (no I/O, no lock held
across an await). A background task started in the lifespan writes the buffer as one
JSON Lines object per UTC day to
`s3://<bucket>/predictions/date=YYYY-MM-DD/<time>-<host>-<id>.jsonl` at least every
`prediction_log_flush_interval_s`, sooner when `prediction_log_flush_records` are
waiting, and once more at shutdown. The blocking S3 put runs in a thread.

What is lost, and counted in `plantops_api_prediction_log_dropped_total{reason}`:
- `buffer_full`: the buffer is full (S3 slow or down for long): the OLDEST record is
  dropped, so the log keeps what the API serves now;
- `s3_error`: a flush failed (S3 down, refused, timed out): that flush's records;
- `shutdown`: the final flush did not finish within its timeout.
Records never wait for S3 and S3 never fails a request. No image bytes are logged: the
SHA-256 of the upload names the photo. Contract: contracts/prediction-log.schema.json.

The same recorder keeps the rolling novelty gauges of /metrics (they work with the log
disabled): the out-of-distribution share over the last `novelty_window` scored
predictions, and a histogram of novelty scores.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import logging
import re
import socket
import time
import uuid
from collections import deque
from contextvars import ContextVar
from datetime import UTC, datetime

import urllib3
from minio import Minio

from plantops_inference_api.config import Settings
from plantops_inference_api.metrics import Metrics
from plantops_inference_api.schemas import Prediction

log = logging.getLogger(__name__)

PREFIX = "predictions"
# Set per HTTP request by RequestIdMiddleware; the items of one batch share it.
REQUEST_ID: ContextVar[str | None] = ContextVar("plantops_request_id", default=None)


def prediction_record(prediction: Prediction, image: bytes, latency_ms: float) -> dict:
    """The logged form of one prediction (exactly the fields of the contract)."""
    return {
        "ts": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "request_id": REQUEST_ID.get() or uuid.uuid4().hex,
        "model_name": prediction.model.name,
        "model_version": prediction.model.version,
        "label": prediction.label,
        "confidence": prediction.confidence,
        "probabilities": prediction.probabilities,
        "novelty_score": prediction.novelty_score,
        "out_of_distribution": prediction.out_of_distribution,
        "image_sha256": hashlib.sha256(image).hexdigest(),
        "latency_ms": round(latency_ms, 3),
    }


class NoveltyWindow:
    """The out-of-distribution share of the last N predictions that carry a novelty score."""

    def __init__(self, size: int, metrics: Metrics) -> None:
        self._flags: deque[bool] = deque(maxlen=size)
        self._metrics = metrics

    def observe(self, prediction: Prediction) -> None:
        if prediction.novelty_score is None or prediction.out_of_distribution is None:
            return  # a model without a novelty reference: nothing to say, not "in distribution"
        self._flags.append(prediction.out_of_distribution)
        self._metrics.novelty_score.observe(prediction.novelty_score)
        self._metrics.ood_window_size.set(len(self._flags))
        self._metrics.ood_ratio.set(sum(self._flags) / len(self._flags))


class PredictionLog:
    """The bounded buffer and its background flusher (see the module docstring)."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.bucket = settings.prediction_log_bucket or settings.s3_bucket
        self.enabled = settings.prediction_log_enabled and settings.s3_access_key is not None
        self._buffer: deque[dict] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._client: Minio | None = None
        self._failing = False  # log a failure once per outage, not once per flush
        # Object names unique across replicas and restarts (several APIs write one prefix).
        host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "api"
        self._writer_id = f"{host}-{uuid.uuid4().hex[:8]}"

    # ------------------------------------------------------------ request path

    def append(self, record: dict) -> None:
        """Queue one record; never blocks and never raises for S3."""
        if self._client is None:  # disabled, or not started yet / any more
            return
        if len(self._buffer) >= self.settings.prediction_log_buffer_records:
            self._buffer.popleft()
            self.metrics.log_dropped.labels(reason="buffer_full").inc()
        self._buffer.append(record)
        self.metrics.log_buffered.set(len(self._buffer))
        if len(self._buffer) >= self.settings.prediction_log_flush_records:
            self._wake.set()

    # ------------------------------------------------------------ background

    async def start(self) -> None:
        if not self.enabled:
            why = "PLANTOPS_PREDICTION_LOG_ENABLED=false"
            if self.settings.prediction_log_enabled:
                why = "no S3 credentials (PLANTOPS_S3_ACCESS_KEY)"
            log.warning("Prediction log off: %s; predictions are not recorded", why)
            return
        self._client = self._make_client()
        self._task = asyncio.create_task(self._flush_forever(), name="prediction-log")
        log.info(
            "Prediction log: s3://%s/%s/, every %ss or %s records",
            self.bucket,
            PREFIX,
            self.settings.prediction_log_flush_interval_s,
            self.settings.prediction_log_flush_records,
        )

    async def stop(self) -> None:
        """Stop the flusher, then write what is left (bounded by the shutdown timeout)."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        waiting = len(self._buffer)
        try:
            await asyncio.wait_for(self.flush(), self.settings.prediction_log_shutdown_timeout_s)
        except TimeoutError:
            self.metrics.log_dropped.labels(reason="shutdown").inc(waiting)
            log.error("Prediction log: %s records lost at shutdown (S3 too slow)", waiting)

    async def _flush_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._wake.wait(), self.settings.prediction_log_flush_interval_s
                )
            self._wake.clear()
            await self.flush()

    async def flush(self) -> int:
        """Write every buffered record; return how many were written (0 when S3 failed)."""
        if not self._buffer or self._client is None:
            return 0
        records = list(self._buffer)
        self._buffer.clear()
        self.metrics.log_buffered.set(0)
        by_day: dict[str, list[dict]] = {}
        for record in records:
            by_day.setdefault(record["ts"][:10], []).append(record)
        written = 0
        for day, day_records in by_day.items():
            try:
                await asyncio.to_thread(self._put, self._key(day), day_records)
            except Exception as exc:  # S3Error, connection refused, timeouts: all the same here
                self.metrics.log_dropped.labels(reason="s3_error").inc(len(day_records))
                if not self._failing:
                    log.warning("Prediction log: S3 write failed, records dropped: %s", exc)
                self._failing = True
                continue
            if self._failing:
                log.info("Prediction log: S3 writes succeed again")
            self._failing = False
            written += len(day_records)
            self.metrics.log_written.inc(len(day_records))
        return written

    def _key(self, day: str) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        return f"{PREFIX}/date={day}/{stamp}-{self._writer_id}.jsonl"

    def _put(self, key: str, records: list[dict]) -> None:
        assert self._client is not None
        body = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records).encode()
        self._client.put_object(
            self.bucket, key, io.BytesIO(body), len(body), content_type="application/x-ndjson"
        )

    def _make_client(self) -> Minio:
        s = self.settings
        access = s.s3_access_key.get_secret_value() if s.s3_access_key else None
        secret = s.s3_secret_key.get_secret_value() if s.s3_secret_key else None
        # No retries and a short timeout: a flush that fails is counted, not repeated, so a
        # dead S3 costs one connection attempt per flush and the buffer stays bounded.
        timeout = s.prediction_log_timeout_s
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=timeout, read=timeout), retries=False
        )
        return Minio(s.s3_endpoint, access, secret, secure=s.s3_secure, http_client=http)


class PredictionRecorder:
    """What `PredictionService` calls once per prediction: the rolling gauges and the log."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.window = NoveltyWindow(settings.novelty_window, metrics)
        self.log = PredictionLog(settings, metrics)

    def record(self, prediction: Prediction, image: bytes, started: float) -> None:
        """`started`: `time.monotonic()` when the prediction began (after the upload)."""
        self.window.observe(prediction)
        if self.log.enabled:
            latency_ms = (time.monotonic() - started) * 1000
            self.log.append(prediction_record(prediction, image, latency_ms))
