"""bench-load's search for the highest rate with p95 < 200 ms (load/steps.py)."""

import importlib.util
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

LOAD = Path(__file__).resolve().parents[2] / "load"
sys.path.insert(0, str(LOAD))  # steps.py imports queueing.py, as bench.py does
_spec = importlib.util.spec_from_file_location("bench_steps", LOAD / "steps.py")
steps = importlib.util.module_from_spec(_spec)
sys.modules["bench_steps"] = steps  # dataclasses looks its module up there
_spec.loader.exec_module(steps)


def served(rate: int, p95_ms: float = 50.0, rejected: int = 0, sent_share: float = 1.0):
    sent = round(rate * sent_share, 1)
    return steps.Step(
        rate=rate,
        requests=int(10 * sent),
        ok=int(10 * sent) - rejected,
        rejected_503=rejected,
        errors=0,
        p95_ms=p95_ms,
        goodput_per_s=sent,
        sent_per_s=sent,
    )


def server_that_holds(limit: int, hiccups: set[int] = frozenset()):
    """A measured step per rate: p95 under the limit up to `limit` requests/s, over it
    above; at the rates in `hiccups` the generator sends too little, once."""
    measured: list[int] = []

    def measure(rate: int):
        measured.append(rate)
        if rate in hiccups and measured.count(rate) == 1:
            return served(rate, sent_share=0.72)  # answered fast, but too few sent
        return served(rate) if rate <= limit else served(rate, p95_ms=320.0, rejected=9)

    return measure, measured


def test_the_search_finds_the_highest_rate_the_server_holds():
    measure, measured = server_that_holds(53)
    best, found = steps.highest_passing_rate(measure, start=16, ceiling=10_000, resolution=1)
    assert best == 53
    assert measured == [16, 32, 64, 48, 56, 52, 54, 53]
    assert [s.passed for s in found] == [r <= 53 for r in measured]


def test_a_step_the_generator_fell_short_on_is_measured_again_and_both_are_kept():
    measure, measured = server_that_holds(53, hiccups={16})
    best, found = steps.highest_passing_rate(measure, start=16, ceiling=10_000, resolution=1)
    assert best == 53  # not 15: the generator's hiccup does not end the search
    assert measured[:3] == [16, 16, 32]
    assert found[0].generator_fell_short and not found[0].passed
    assert found[1].passed


def test_a_step_the_server_failed_is_not_measured_again():
    # Refused requests, and a slow p95, are the server's failures even when the
    # generator also sent too little.
    too_slow = served(16, p95_ms=250.0, sent_share=0.7)
    refused = served(16, rejected=3, sent_share=0.7)
    for step in (too_slow, refused):
        calls: list[int] = []

        def measure(rate: int, step=step, calls=calls):
            calls.append(rate)
            return step

        best, _ = steps.highest_passing_rate(measure, start=16, ceiling=64, resolution=1)
        assert not step.generator_fell_short
        assert calls == [16, 8, 4, 2, 1]  # bisected down, each rate once
        assert best == 0
