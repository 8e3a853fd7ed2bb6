"""Requests that arrive together share one onnxruntime run, each on its own model."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from modelkit import write_model

from plantops_inference_api.batching import Batcher
from plantops_inference_api.metrics import Metrics
from plantops_inference_api.model import ModelSource, load_model_dir

pytestmark = pytest.mark.unit


def colour_input(channel: int) -> np.ndarray:
    x = np.full((3, 32, 32), -1.0, dtype=np.float32)
    x[channel] = 1.0
    return x


def test_waiting_images_run_as_one_batch_and_keep_their_model(tmp_path):
    three = load_model_dir(write_model(tmp_path / "a"), ModelSource("m", "1", "champion"))
    four = load_model_dir(
        write_model(tmp_path / "b", labels=("r", "g", "b", "y")), ModelSource("m", "2", "champion")
    )
    metrics = Metrics()

    async def scenario() -> list[np.ndarray]:
        batcher = Batcher(max_batch=8, metrics=metrics)
        await batcher.start()
        try:
            # Queued before the worker runs: they arrive "together".
            jobs = [batcher.probabilities(three, colour_input(c)) for c in (0, 1, 2)]
            jobs.append(batcher.probabilities(four, colour_input(1)))
            return await asyncio.gather(*jobs)
        finally:
            await batcher.stop()

    results = asyncio.run(scenario())
    assert [int(r.argmax()) for r in results] == [0, 1, 2, 1]
    assert [len(r) for r in results] == [3, 3, 3, 4]  # each on the model it asked for
    batch_sizes = metrics.registry.get_sample_value("plantops_api_inference_batch_size_sum")
    runs = metrics.registry.get_sample_value("plantops_api_inference_batch_size_count")
    assert (batch_sizes, runs) == (4.0, 2.0)  # one run of 3 (model 1), one of 1 (model 2)


def test_batches_never_exceed_the_maximum(tmp_path):
    model = load_model_dir(write_model(tmp_path), ModelSource("m", "1", "champion"))
    metrics = Metrics()

    async def scenario() -> None:
        batcher = Batcher(max_batch=2, metrics=metrics)
        await batcher.start()
        try:
            await asyncio.gather(*(batcher.probabilities(model, colour_input(0)) for _ in range(5)))
        finally:
            await batcher.stop()

    asyncio.run(scenario())
    runs = metrics.registry.get_sample_value("plantops_api_inference_batch_size_count")
    assert runs == 3.0  # 2 + 2 + 1
