"""The server's CPU pool: one thread per core for decoding and inference, inference first.

A prediction visits the pool twice: its decode, then its inference (in a batch). With
one first-come queue for both, every request that arrives while a batch runs puts its
decode ahead of the next batch, so the images already decoded wait for the decoding of
newer requests: answers come out of arrival order, and under steady load the slowest
answers wait longest (issue 14's p95). Here a waiting inference job runs before any
waiting decode, so a request that has been decoded is answered before newer ones are
started, and the pool as a whole serves requests in arrival order. Jobs of one lane
keep their order.

`inference` and `decode` are `concurrent.futures.Executor`s over the same threads, for
`loop.run_in_executor`.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

INFERENCE, DECODE = 0, 1  # lower runs first

# The future to settle, the function and its arguments.
_Job = tuple[Future, Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class CpuPool:
    def __init__(self, workers: int, name: str = "cpu") -> None:
        # (priority, submission order, job); None as the job stops a thread.
        self._jobs: queue.PriorityQueue[tuple[int, int, _Job | None]] = queue.PriorityQueue()
        self._order = itertools.count()
        self._closed = False
        self._lock = threading.Lock()
        self.inference: Executor = _Lane(self, INFERENCE)
        self.decode: Executor = _Lane(self, DECODE)
        # Daemon threads: a pool never shut down (a test's) does not hold the process
        # open; the API's lifespan shuts its pool down.
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}_{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, priority: int, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the CPU pool is shut down")
            self._jobs.put((priority, next(self._order), (future, fn, args, kwargs)))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """No new jobs; the threads end after their current job (and the waiting ones,
        unless `cancel_futures`)."""
        with self._lock:
            self._closed = True
            if cancel_futures:
                self._cancel_waiting()
            # After every job: a stop sorts behind both lanes.
            for _ in self._threads:
                self._jobs.put((DECODE + 1, next(self._order), None))
        if wait:
            for thread in self._threads:
                thread.join()

    def _cancel_waiting(self) -> None:
        while True:
            try:
                _, _, job = self._jobs.get_nowait()
            except queue.Empty:
                return
            if job is not None:
                job[0].cancel()

    def _work(self) -> None:
        while True:
            _, _, job = self._jobs.get()
            if job is None:
                return
            future, fn, args, kwargs = job
            if not future.set_running_or_notify_cancel():
                continue  # cancelled while it waited
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # handed to the waiting coroutine, as an executor does
                future.set_exception(exc)
            else:
                future.set_result(result)


class _Lane(Executor):
    """One priority of a `CpuPool`, as an Executor."""

    def __init__(self, pool: CpuPool, priority: int) -> None:
        self._pool = pool
        self._priority = priority

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        return self._pool.submit(self._priority, fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """The pool's threads are shared: `CpuPool.shutdown` ends them."""
