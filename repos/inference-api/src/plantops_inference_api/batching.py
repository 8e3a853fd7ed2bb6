"""Runs the images of requests that arrive together as one onnxruntime batch.

One worker takes everything waiting in the queue (up to the batch size) and runs it
in a thread while new requests queue up behind it: under load batches grow by
themselves, at low load an image runs alone without waiting for company.

A batch that is not full also waits for the images already being decoded
(`expect_image()`): those requests arrived before any that comes later, so they are
answered together, in order, instead of one batch each. Without this, a core that falls
behind decodes one image, runs it alone, decodes the next: all of its backlog at batch
size 1, the dearest way per image, just when it has the least time to spare. A request
arriving while the batch waits can join it only until it is full: the wait is at most
max_batch - 1 decodes, each bounded by the image budget like any decode (README, "Limits").

The thread is one of the server's CPU pool (cpu_pool.py), the pool that decodes too: on
a one-core replica decoding and inference then take turns instead of preempting each other
on the core (make bench-cpu-split: the pool ran within 1-3 % of in-process speed on two
machines, 14 % slower on a third; docs/BENCHMARKS.md), and a batch goes before the
decoding of newer requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from concurrent.futures import Executor

import numpy as np

from plantops_inference_api.metrics import Metrics
from plantops_inference_api.model import LoadedModel, ModelOutput

log = logging.getLogger(__name__)

# (model, image, future, monotonic time it was queued)
_Item = tuple[LoadedModel, np.ndarray, asyncio.Future, float]


class Batcher:
    def __init__(self, max_batch: int, metrics: Metrics, executor: Executor | None = None) -> None:
        self.max_batch = max_batch
        self.executor = executor  # None: asyncio's default thread pool
        self.metrics = metrics
        self._queue: asyncio.Queue[_Item] | None = None
        self._worker: asyncio.Task | None = None
        self._decoding = 0  # images on their way (expect_image)
        self._decoded: asyncio.Event | None = None  # set when one is done, queued or not

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._decoded = asyncio.Event()
        self._worker = asyncio.create_task(self._run(), name="inference-batcher")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker

    @contextlib.contextmanager
    def expect_image(self) -> Iterator[None]:
        """Wrap an image's decode: a batch that is not full waits for it.

        Leave the block and queue the image (`predict`) with no await in between, so the
        worker never sees the image neither expected nor queued. An image that fails to
        decode, or whose request is cancelled, leaves the block too: nothing waits for it.
        """
        self._decoding += 1
        try:
            yield
        finally:
            self._decoding -= 1
            if self._decoded is not None:
                self._decoded.set()

    async def probabilities(self, model: LoadedModel, image: np.ndarray) -> np.ndarray:
        """The model's probabilities for one preprocessed `[3, H, W]` image."""
        return (await self.predict(model, image)).probabilities

    async def predict(self, model: LoadedModel, image: np.ndarray) -> ModelOutput:
        """Probabilities `[n_labels]` and novelty score (a 0-d array, or None) of one image."""
        if self._queue is None:
            raise RuntimeError("the batcher is not started")
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((model, image, future, time.monotonic()))
        self.metrics.queue_depth.set(self._queue.qsize())
        return await future

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            items = await self._next_batch()
            self.metrics.queue_depth.set(self._queue.qsize())
            started = time.monotonic()
            for item in items:
                self.metrics.stage_latency.labels(stage="queue").observe(started - item[3])
            # A swap may land between two requests: each image runs on the model its
            # request started with.
            by_model: dict[int, list[_Item]] = {}
            for item in items:
                by_model.setdefault(id(item[0]), []).append(item)
            for group in by_model.values():
                await self._run_group(group)

    async def _next_batch(self) -> list[_Item]:
        """The oldest waiting image and those behind it, with the images still being
        decoded, up to the batch size."""
        assert self._queue is not None and self._decoded is not None
        items = [await self._queue.get()]
        while len(items) < self.max_batch:
            if not self._queue.empty():
                items.append(self._queue.get_nowait())
            elif self._decoding:
                self._decoded.clear()
                await self._decoded.wait()
            else:
                break
        return items

    async def _run_group(self, group: list[_Item]) -> None:
        model = group[0][0]
        images = [item[1] for item in group]
        self.metrics.batch_size.observe(len(group))
        started = time.monotonic()
        try:
            loop = asyncio.get_running_loop()
            output = await loop.run_in_executor(self.executor, _predict_batch, model, images)
        except Exception as exc:
            log.exception("Inference failed on a batch of %d", len(group))
            for item in group:
                if not item[2].done():
                    item[2].set_exception(exc)
            return
        elapsed = time.monotonic() - started
        scores = output.novelty_scores
        for i, (_, _, future, _) in enumerate(group):
            self.metrics.stage_latency.labels(stage="inference").observe(elapsed)
            if not future.done():  # the client may have gone
                novelty = None if scores is None else scores[i]
                future.set_result(ModelOutput(output.probabilities[i], novelty))


def _predict_batch(model: LoadedModel, images: list[np.ndarray]) -> ModelOutput:
    # Stacked in the pool's thread: copying the images is work the event loop need not do.
    return model.predict(np.stack(images))
