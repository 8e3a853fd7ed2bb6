"""The model lifecycle: load at start, follow the alias, swap atomically, keep retrying.

A `ModelManager` owns the model that serves. A new version is loaded completely beside
the current one (downloaded, opened in onnxruntime, verified on a probe input) and only
then swapped in with one reference assignment: a request holds the model it started
with, so no request ever sees half a swap. A version that fails to load leaves the old
one serving; the failure goes to the log and to `plantops_api_model_load_failures_total`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import threading
from pathlib import Path

from plantops_inference_api.config import Settings
from plantops_inference_api.errors import ModelLoadError
from plantops_inference_api.metrics import Metrics
from plantops_inference_api.model import LoadedModel, ModelSource, load_model_dir
from plantops_inference_api.registry import Registry, download_model_files

log = logging.getLogger(__name__)


class ModelManager:
    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.registry = Registry(settings)
        self.current: LoadedModel | None = None
        self.not_ready_reason = "the model is loading"
        self._failed_version: str | None = None
        self._load_lock = threading.Lock()  # one load at a time: poller or reload
        self._task: asyncio.Task | None = None
        self._retry_s = settings.model_retry_interval_s

    # ---------------------------------------------------------------- loading

    def refresh(self, retry_failed: bool = False) -> bool:
        """Load the model the settings point at if it is new; True when one was swapped in.

        A version that already failed to load is skipped unless `retry_failed`.

        Raises ModelLoadError (already logged and counted) when it cannot be loaded.
        """
        with self._load_lock:
            try:
                model = (
                    self._load_local()
                    if self.settings.model_path
                    else self._load_registry(retry_failed)
                )
            except ModelLoadError as exc:
                self._record_failure(exc)
                raise
            if model is None:
                return False
            self._swap(model)
            return True

    def _load_local(self) -> LoadedModel:
        folder = Path(self.settings.model_path or ".")
        source = ModelSource(
            name=self.settings.model_name, version="local", alias="local", source_uri=str(folder)
        )
        return load_model_dir(folder, source, self.settings.onnx_threads)

    def _load_registry(self, retry_failed: bool) -> LoadedModel | None:
        source = self.registry.resolve()
        current = self.current
        if current is not None and current.source.version == source.version:
            return None
        if not retry_failed and source.version == self._failed_version:
            return None  # already failed to load; wait for the alias to move or a reload
        log.info("Loading %s version %s from %s", source.name, source.version, source.source_uri)
        with tempfile.TemporaryDirectory(prefix="plantops-model-") as tmp:
            download_model_files(self.settings, source.source_uri or "", Path(tmp))
            try:
                return load_model_dir(Path(tmp), source, self.settings.onnx_threads)
            except ModelLoadError:
                self._failed_version = source.version
                raise

    def _swap(self, model: LoadedModel) -> None:
        previous, self.current = self.current, model
        self._failed_version = None
        s = model.source
        self.metrics.model_info.info({"name": s.name, "version": s.version, "alias": s.alias})
        self.metrics.model_ready.set(1)
        self.metrics.model_loads.inc()
        was = f" (was version {previous.source.version})" if previous else ""
        log.info("Serving %s version %s, labels %s%s", s.name, s.version, model.labels, was)

    def _record_failure(self, exc: ModelLoadError) -> None:
        self.metrics.model_load_failures.labels(stage=exc.stage).inc()
        if self.current is None:
            reason = f"no model loaded yet: {exc} (retrying)"
            if reason != self.not_ready_reason:  # once per new reason, not every retry
                log.warning("Model load failed, retrying every %ss: %s", self._retry_s, exc)
            self.not_ready_reason = reason
        else:
            log.error(
                "Model load failed, version %s keeps serving: %s", self.current.source.version, exc
            )

    async def refresh_async(self, retry_failed: bool = False) -> bool:
        return await asyncio.to_thread(self.refresh, retry_failed)

    # ---------------------------------------------------------------- background polling

    async def start(self) -> None:
        """Begin loading; wait for the first attempt at most `startup_wait_s`.

        The service starts whether the first load succeeds, fails or is still running (a
        slow S3 must not keep /healthz silent): loading and retrying go on in background.
        """
        first_attempt = asyncio.Event()
        self._task = asyncio.create_task(self._poll_forever(first_attempt), name="model-poller")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(first_attempt.wait(), self.settings.startup_wait_s)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _poll_forever(self, first_attempt: asyncio.Event) -> None:
        with contextlib.suppress(ModelLoadError):
            await self.refresh_async()
        first_attempt.set()
        while True:
            if self.current is None:
                await asyncio.sleep(self.settings.model_retry_interval_s)
            elif self.settings.model_path:
                return  # a model given by path is loaded once (POST /v1/model/reload reloads)
            else:
                await asyncio.sleep(self.settings.model_poll_interval_s)
            with contextlib.suppress(ModelLoadError):
                await self.refresh_async()
