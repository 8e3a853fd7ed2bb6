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


def batch_runs(metrics: Metrics) -> tuple[float | None, float | None]:
    """(images run, batches run) so far."""
    get = metrics.registry.get_sample_value
    return (
        get("plantops_api_inference_batch_size_sum"),
        get("plantops_api_inference_batch_size_count"),
    )


def test_a_batch_waits_for_the_images_already_being_decoded(tmp_path):
    model = load_model_dir(write_model(tmp_path), ModelSource("m", "1", "champion"))
    metrics = Metrics()

    async def scenario() -> list[np.ndarray]:
        batcher = Batcher(max_batch=4, metrics=metrics)
        await batcher.start()
        decoded = asyncio.Event()

        async def request(channel: int, decode_done: asyncio.Event | None) -> np.ndarray:
            with batcher.expect_image():
                if decode_done is not None:
                    await decode_done.wait()  # a decode still running in the pool
            return await batcher.probabilities(model, colour_input(channel))

        try:
            first = asyncio.create_task(request(0, None))
            later = [asyncio.create_task(request(c, decoded)) for c in (1, 2)]
            await asyncio.sleep(0.2)  # the first image is queued; the others are not
            decoded.set()
            return await asyncio.gather(first, *later)
        finally:
            await batcher.stop()

    results = asyncio.run(scenario())
    assert [int(r.argmax()) for r in results] == [0, 1, 2]
    assert batch_runs(metrics) == (3.0, 1.0)  # one batch of 3, not the first alone


def test_an_image_that_never_arrives_does_not_hold_the_batch(tmp_path):
    model = load_model_dir(write_model(tmp_path), ModelSource("m", "1", "champion"))
    metrics = Metrics()

    async def scenario() -> np.ndarray:
        batcher = Batcher(max_batch=4, metrics=metrics)
        await batcher.start()
        fail = asyncio.Event()

        async def bad_upload() -> None:
            with batcher.expect_image():
                await fail.wait()
                raise ValueError("not an image")

        async def abandoned() -> None:
            with batcher.expect_image():
                await asyncio.Event().wait()  # the client goes away mid-decode

        try:
            failing = asyncio.create_task(bad_upload())
            cancelled = asyncio.create_task(abandoned())
            first = asyncio.create_task(batcher.probabilities(model, colour_input(0)))
            await asyncio.sleep(0.2)
            assert not first.done()  # waiting for the two decodes
            cancelled.cancel()
            fail.set()
            with pytest.raises(ValueError):
                await failing
            return await asyncio.wait_for(first, 10)
        finally:
            await batcher.stop()

    assert int(asyncio.run(scenario()).argmax()) == 0
    assert batch_runs(metrics) == (1.0, 1.0)
