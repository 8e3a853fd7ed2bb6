"""In-process rate limits: at most `limit` hits per key in any `window_s` seconds.

Kept in this replica's memory on purpose (simple, no extra server): with N replicas behind
a load balancer a visitor gets up to N times the limit. Memory is bounded: keys idle for a
whole window are dropped, and past `max_keys` the least recently seen key goes first.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self,
        limit: int,
        window_s: float = 60.0,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit = limit
        self._window_s = window_s
        self._max_keys = max_keys
        self._clock = clock
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, key: str) -> int | None:
        """Count one hit; None when allowed, else the seconds to wait (the hit is not counted)."""
        now = self._clock()
        with self._lock:
            hits = self._hits.pop(key, None) or deque()
            while hits and now - hits[0] >= self._window_s:
                hits.popleft()
            self._hits[key] = hits
            if len(hits) >= self._limit:
                return max(1, math.ceil(hits[0] + self._window_s - now))
            hits.append(now)
            while len(self._hits) > self._max_keys:
                self._hits.popitem(last=False)
            return None


class AbuseLimits:
    """The web app's limits: uploads, feedback and sign-in attempts per visitor, those POSTs
    per client address whatever the cookies, and "retrain now" once a minute per reviewer."""

    def __init__(self, uploads: int, feedback: int, posts_per_address: int) -> None:
        self.uploads = RateLimiter(uploads)
        self.feedback = RateLimiter(feedback)
        self.sign_in = RateLimiter(feedback)
        self.per_address = RateLimiter(posts_per_address)
        self.retrain = RateLimiter(1)

    def check(self, limiter: RateLimiter, visitor_key: str, address_key: str) -> int | None:
        """None when both allow it, else the seconds to wait."""
        return self.per_address.hit(address_key) or limiter.hit(visitor_key)
