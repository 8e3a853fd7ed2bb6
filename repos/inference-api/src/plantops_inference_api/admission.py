"""Admission control: a bounded number of prediction requests in the server at once.

A request holds a slot from the moment its body has arrived until its answer is ready
(decoding, queueing, inference). When all slots are taken, a new request is refused at
once with 503 and `Retry-After`: by the middleware from its headers, before its body is
read (the cheap, common case under overload), or here if the slots filled while its body
arrived. Refusing costs next to nothing, so the server spends its cores on the requests it
admitted and their latency stays bounded instead of a queue growing without limit.

A body still arriving holds no slot: a slow client cannot block predictions for others
(the request deadline of server.py bounds how long it may take).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from plantops_inference_api.errors import Overloaded
from plantops_inference_api.metrics import Metrics

RETRY_AFTER_S = 1


class Admission:
    def __init__(self, limit: int, metrics: Metrics) -> None:
        self.limit = limit
        self.metrics = metrics
        self.in_flight = 0

    @property
    def full(self) -> bool:
        return self.in_flight >= self.limit

    def refusal_message(self) -> str:
        return f"The API is busy: {self.limit} requests are already in progress. Retry in a moment."

    def refused(self) -> None:
        self.metrics.admission_rejected.inc()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a slot while the block runs; Overloaded (503) when none is free."""
        if self.full:
            self.refused()
            raise Overloaded(self.refusal_message(), RETRY_AFTER_S)
        self.in_flight += 1
        self.metrics.in_flight.set(self.in_flight)
        try:
            yield
        finally:
            self.in_flight -= 1
            self.metrics.in_flight.set(self.in_flight)
