"""The CPU pool runs a waiting inference before waiting decodes, each lane in order."""

from __future__ import annotations

import asyncio
import threading

import pytest

from plantops_inference_api.cpu_pool import CpuPool

pytestmark = pytest.mark.unit


def occupy(pool: CpuPool) -> threading.Event:
    """Hold the pool's one thread until the returned event is set."""
    release, started = threading.Event(), threading.Event()

    def hold() -> None:
        started.set()
        release.wait(10)

    pool.decode.submit(hold)
    assert started.wait(10)
    return release


def test_a_waiting_inference_runs_before_decodes_that_arrived_earlier():
    pool = CpuPool(1)
    ran: list[str] = []
    try:
        release = occupy(pool)
        jobs = [
            pool.decode.submit(ran.append, "decode 1"),
            pool.decode.submit(ran.append, "decode 2"),
            pool.inference.submit(ran.append, "inference 1"),
            pool.inference.submit(ran.append, "inference 2"),
            pool.decode.submit(ran.append, "decode 3"),
        ]
        release.set()
        for job in jobs:
            job.result(10)
    finally:
        pool.shutdown()
    assert ran == ["inference 1", "inference 2", "decode 1", "decode 2", "decode 3"]


def test_results_and_errors_reach_the_awaiting_coroutine():
    pool = CpuPool(2)

    async def scenario() -> tuple[int, BaseException]:
        loop = asyncio.get_running_loop()
        total = await loop.run_in_executor(pool.inference, sum, [1, 2, 3])
        with pytest.raises(ValueError, match="not an image") as caught:
            await loop.run_in_executor(pool.decode, _fail, "not an image")
        return total, caught.value

    try:
        total, error = asyncio.run(scenario())
    finally:
        pool.shutdown()
    assert total == 6 and str(error) == "not an image"


def test_shutdown_cancels_the_waiting_jobs_and_refuses_new_ones():
    pool = CpuPool(1)
    release = occupy(pool)
    waiting = pool.inference.submit(sum, [1])
    pool.shutdown(wait=False, cancel_futures=True)
    release.set()
    assert waiting.cancelled()
    with pytest.raises(RuntimeError, match="shut down"):
        pool.decode.submit(sum, [1])


def _fail(message: str) -> None:
    raise ValueError(message)
