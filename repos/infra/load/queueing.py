"""What queueing alone allows a server: the highest rate of Poisson arrivals that one
server with a fixed time per request holds with its p95 response time under a limit.

`make bench-load` reports this beside the rate it measured, so that the measured ratio to
raw splits into two parts. One is lost to queueing by any server at that raw speed:
requests arrive at random, so a core busy 90 % of the time keeps a queue. The other is
the API's own cost per request beyond the raw work. A server that spends exactly the raw
in-process time per request can hold at most `ceiling x raw` within the limit.

The model is M/D/1: Poisson arrivals, one request at a time, the same service time for
each (the raw time varies by a few percent from photo to photo; bench_api.py). Its
waiting time has an exact distribution (Erlang, 1909): with service time 1 and arrival
rate rho,

    P(W <= t) = (1 - rho) * sum_{k=0..floor(t)} (rho (k - t))^k / k! * exp(-rho (k - t))

The terms alternate in sign and grow like exp(rho t), so the sum is taken in `Decimal`
with enough digits for them to cancel exactly; in floats it is already wrong at t = 40
(a 5 ms request under a 200 ms limit; tests/unit/test_queueing.py).
"""

from __future__ import annotations

import json
import math
import sys
from decimal import Decimal, localcontext

QUANTILE = 0.95
P95_LIMIT_S = 0.2  # bench-load's rule (bench.py uses this one): a step passes under it
BISECTION_STEPS = 20  # utilisation to within 1e-6, reported to 3 decimals


def md1_wait_cdf(utilisation: float, t: float) -> float:
    """P(wait <= t) in an M/D/1 queue, `t` in service times, at `utilisation` < 1."""
    if t < 0:
        return 0.0
    with localcontext() as ctx:
        ctx.prec = 40 + int(t)  # the largest term has about 0.43 t digits before the point
        rho, t_ = Decimal(repr(utilisation)), Decimal(repr(t))
        total = Decimal(0)
        for k in range(math.floor(t) + 1):
            x = rho * (k - t_)
            power = x**k if k else Decimal(1)  # Decimal refuses 0 ** 0
            total += power / math.factorial(k) * (-x).exp()
        return float((1 - rho) * total)


def poisson_p95_ceiling(service_s: float, p95_limit_s: float) -> float:
    """The highest utilisation (arrival rate x service time) whose p95 response time
    (wait + service) is under the limit; 0.0 when one request alone takes the limit."""
    if service_s >= p95_limit_s:
        return 0.0
    wait_limit = p95_limit_s / service_s - 1.0  # in service times
    low, high = 0.0, 1.0
    for _ in range(BISECTION_STEPS):
        middle = (low + high) / 2
        if md1_wait_cdf(middle, wait_limit) >= QUANTILE:
            low = middle
        else:
            high = middle
    return round(low, 3)


def queueing_figures(raw_per_s: float, capacity_per_s: float | None, p95_limit_s: float) -> dict:
    """bench-load's reading of its own figures: the sustainable ratio to raw that queueing
    allows a server with no cost beyond the raw work, and one at the server's measured
    closed-loop capacity (its own time per request, HTTP and all)."""
    if not raw_per_s:
        return {}
    figures = {"queueing_ceiling_over_raw": poisson_p95_ceiling(1 / raw_per_s, p95_limit_s)}
    if capacity_per_s:
        at_capacity = poisson_p95_ceiling(1 / capacity_per_s, p95_limit_s)
        figures["capacity_over_raw"] = round(capacity_per_s / raw_per_s, 3)
        figures["queueing_estimate_at_capacity_over_raw"] = round(
            at_capacity * capacity_per_s / raw_per_s, 3
        )
    return figures


def main() -> None:
    """`python3 load/queueing.py < runs.jsonl`: the figures above for bench-load lines
    written before they were part of its output; one JSON line each."""
    for line in sys.stdin:
        run = json.loads(line)
        if run.get("benchmark") != "api_load":
            continue
        raw, capacity = run["raw_throughput_per_s"], run["capacity_closed_loop_hey"]["ok_per_s"]
        print(
            json.dumps(
                {
                    "raw_throughput_per_s": raw,
                    "capacity_per_s": capacity,
                    "sustainable_over_raw": run["sustainable_over_raw"],
                    **queueing_figures(raw, capacity, P95_LIMIT_S),
                }
            )
        )


if __name__ == "__main__":
    main()
