"""bench-load's steps and its search for the highest rate with p95 < 200 ms, without Locust
(bench.py measures the steps), so that the rules can be tested on their own.

A step is one rate held for a few seconds. It passes when every request was answered,
none refused, the p95 under the limit and the generator sent at least 80 % of the rate
(Poisson arrivals: 10 s at 16/s send 160 +- 13, so under 80 % means "could not send").
The search doubles the rate from --start until a step fails, then bisects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from queueing import P95_LIMIT_S

P95_LIMIT_MS = 1000 * P95_LIMIT_S
SENT_SHARE = 0.8


@dataclass
class Step:
    rate: int
    requests: int
    ok: int
    rejected_503: int
    errors: int
    p95_ms: float  # of the 200s
    goodput_per_s: float
    sent_per_s: float
    server_p95_ms_le: float | None = None  # the API's own histogram: p95 <= this bucket
    # CPU seconds the API process used per second of the step (1.0: all of one core) and
    # the 1-minute load average at its end: a step the machine's other work disturbed
    # shows as a share under 1 at overload, or a high load average.
    server_cpu_per_s: float | None = None
    load_average_1m: float | None = None

    @property
    def served_well(self) -> bool:
        """The server's part: everything it was sent answered, none refused, p95 in limit."""
        return self.errors == 0 and self.rejected_503 == 0 and self.p95_ms < P95_LIMIT_MS

    @property
    def passed(self) -> bool:
        return self.served_well and self.sent_per_s >= SENT_SHARE * self.rate

    @property
    def generator_fell_short(self) -> bool:
        """Failed only because the generator sent too little: its failure, not the server's."""
        return self.served_well and not self.passed


def highest_passing_rate(
    measure: Callable[[int], Step], start: int, ceiling: int, resolution: int
) -> tuple[int, list[Step]]:
    """The highest passing rate (0: none) and every step measured, in order.

    A step the generator fell short on is measured once more, and both are kept: a
    generator's hiccup (once 116 requests sent in a 10 s step at 16/s, answered with p95
    37 ms) otherwise ends the doubling at the first step and reports a quarter of the rate.
    """
    steps: list[Step] = []

    def passes(rate: int) -> bool:
        steps.append(measure(rate))
        if steps[-1].generator_fell_short:
            steps.append(measure(rate))
        return steps[-1].passed

    best, worst, rate = 0, None, start
    while rate <= ceiling:
        if not passes(rate):
            worst = rate
            break
        best, rate = rate, rate * 2
    while worst is not None and worst - best > resolution:
        middle = (best + worst) // 2
        if passes(middle):
            best = middle
        else:
            worst = middle
    return best, steps
