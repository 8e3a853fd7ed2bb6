import pytest

from plantops_webapp.ratelimit import RateLimiter

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_limit_allows_n_hits_per_window_then_says_how_long_to_wait():
    clock = Clock()
    limiter = RateLimiter(3, window_s=60, clock=clock)
    assert [limiter.hit("v") for _ in range(3)] == [None, None, None]
    clock.now = 20
    assert limiter.hit("v") == 40  # the first hit leaves the window at t=60
    assert limiter.hit("other") is None  # keys are independent
    clock.now = 60
    assert limiter.hit("v") is None


def test_refused_hits_do_not_extend_the_wait():
    clock = Clock()
    limiter = RateLimiter(1, window_s=10, clock=clock)
    assert limiter.hit("v") is None
    for second in range(1, 10):
        clock.now = second
        assert limiter.hit("v") == 10 - second
    clock.now = 10
    assert limiter.hit("v") is None


def test_memory_is_bounded_by_the_number_of_keys():
    limiter = RateLimiter(1, window_s=60, max_keys=10)
    for n in range(100):
        limiter.hit(f"key-{n}")
    assert len(limiter._hits) == 10
