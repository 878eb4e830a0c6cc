"""Client-side requests-per-minute limit: a thread-safe token bucket that waits, never fails."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog

log = structlog.get_logger("ai_agents.llm")


class RateLimiter:
    """At most ``requests_per_minute`` on average, bursts up to one minute's worth.

    The bucket holds up to ``requests_per_minute`` tokens and refills continuously;
    :meth:`acquire` takes one, sleeping outside the lock until one is there, so
    waiting threads do not block each other's refill arithmetic.
    """

    def __init__(self, requests_per_minute: int, *, label: str = "",
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        if requests_per_minute <= 0:
            raise ValueError("requests_per_minute must be positive")
        self.capacity = float(requests_per_minute)
        self.rate = requests_per_minute / 60.0  # tokens per second
        self.label = label
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._stamp = clock()
        self._lock = threading.Lock()

    def _take(self) -> float:
        """Take a token and return 0, or return the seconds until one will be there."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens >= 1 - 1e-9:  # float sums after an exact wait can land a hair below 1
                self._tokens = max(0.0, self._tokens - 1)
                return 0.0
            return (1 - self._tokens) / self.rate

    def acquire(self) -> float:
        """Block until a request may go out; return the seconds waited."""
        waited = 0.0
        while (wait := self._take()) > 0:
            if waited == 0.0:
                log.info("llm_rate_limit_wait", provider=self.label, wait_s=round(wait, 3))
            self._sleep(wait)
            waited += wait
        return waited
