"""Who may reload the model and read the metrics.

Wrong reload keys are counted per client address: after `max_failures` within a window
the client gets 429 until its oldest failure leaves the window, whatever key it sends, so
a key cannot be guessed faster than a few tries a minute. Memory is bounded: at most
`max_clients` addresses are remembered (the oldest forgotten first).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict, deque

from plantops_inference_api.errors import TooManyAttempts


class FailedKeyLimiter:
    def __init__(
        self, max_failures: int, window_s: float = 60.0, max_clients: int = 10_000
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_clients = max_clients
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def check(self, client: str) -> None:
        """Raises TooManyAttempts while `client` has used up its failures in the window."""
        failures = self._recent(client)
        if len(failures) >= self.max_failures:
            wait = math.ceil(failures[0] + self.window_s - time.monotonic())
            raise TooManyAttempts(
                f"Too many wrong API keys from this address: retry in {wait} s.",
                retry_after_s=max(wait, 1),
            )

    def record_failure(self, client: str) -> None:
        self._recent(client).append(time.monotonic())
        self._failures.move_to_end(client)
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)

    def _recent(self, client: str) -> deque[float]:
        failures = self._failures.setdefault(client, deque())
        horizon = time.monotonic() - self.window_s
        while failures and failures[0] < horizon:
            failures.popleft()
        return failures


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> list[Network]:
    """'10.0.0.0/8, 127.0.0.1' to networks; a ValueError names a bad entry."""
    parts = [part.strip() for part in text.split(",")]
    return [ipaddress.ip_network(part, strict=False) for part in parts if part]


def address_in(address: str | None, networks: list[Network]) -> bool:
    if address is None:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)
