"""bench-load's queueing figures (load/queueing.py), checked against a simulated queue."""

import importlib.util
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

QUEUEING_PY = Path(__file__).resolve().parents[2] / "load" / "queueing.py"
_spec = importlib.util.spec_from_file_location("queueing", QUEUEING_PY)
queueing = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(queueing)


def simulated_waits(utilisation: float, arrivals: int, seed: int = 0) -> list[float]:
    """Waits of an M/D/1 queue (service time 1) by Lindley's recursion: an independent
    way to the same distribution as the closed form under test."""
    rng = random.Random(seed)
    wait, waits = 0.0, []
    for _ in range(arrivals):
        waits.append(wait)
        wait = max(0.0, wait + 1.0 - rng.expovariate(utilisation))
    return waits


def fraction_within(waits: list[float], t: float) -> float:
    return sum(w <= t for w in waits) / len(waits)


def test_no_wait_has_probability_one_minus_utilisation():
    # The server is idle a fraction 1 - rho of the time, and only then is there no wait.
    for rho in (0.2, 0.5, 0.9):
        assert queueing.md1_wait_cdf(rho, 0.0) == pytest.approx(1 - rho, abs=1e-12)


@pytest.mark.parametrize(("rho", "t"), [(0.5, 1.5), (0.8, 5.0), (0.95, 40.0)])
def test_wait_distribution_matches_a_simulated_queue(rho, t):
    # t = 40 is past where the alternating sum falls apart in floats.
    waits = simulated_waits(rho, 300_000)
    assert queueing.md1_wait_cdf(rho, t) == pytest.approx(fraction_within(waits, t), abs=0.015)


def test_ceiling_is_where_the_simulated_p95_crosses_the_limit():
    service_s, limit_s = 0.015, 0.2  # a 256 px prediction on a slow core; bench's rule
    ceiling = queueing.poisson_p95_ceiling(service_s, limit_s)
    wait_limit = limit_s / service_s - 1
    below = fraction_within(simulated_waits(ceiling - 0.02, 400_000), wait_limit)
    above = fraction_within(simulated_waits(ceiling + 0.02, 400_000), wait_limit)
    assert below > 0.95 > above


def test_faster_service_leaves_less_to_queueing_and_a_full_limit_leaves_nothing():
    ceilings = [queueing.poisson_p95_ceiling(s, 0.2) for s in (0.005, 0.010, 0.020, 0.100)]
    assert ceilings == sorted(ceilings, reverse=True)
    assert 0 < ceilings[-1] < ceilings[0] < 1
    assert queueing.poisson_p95_ceiling(0.2, 0.2) == 0.0


def test_reads_bench_load_lines_and_skips_others():
    run = {
        "benchmark": "api_load",
        "raw_throughput_per_s": 100.0,
        "capacity_closed_loop_hey": {"ok_per_s": 80.0},
        "sustainable_over_raw": 0.6,
    }
    lines = json.dumps({"bench": "api_cpu_split"}) + "\n" + json.dumps(run) + "\n"
    out = subprocess.run(
        [sys.executable, str(QUEUEING_PY)], input=lines, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert len(out) == 1
    figures = json.loads(out[0])
    assert figures["capacity_over_raw"] == 0.8
    assert figures["queueing_ceiling_over_raw"] == queueing.poisson_p95_ceiling(0.01, 0.2)
    # The server's own time per request is 1/80 s: its estimate is below the raw ceiling.
    assert figures["queueing_estimate_at_capacity_over_raw"] < figures["queueing_ceiling_over_raw"]
