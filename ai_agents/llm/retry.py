"""The one retry policy for every provider: exponential backoff with jitter, Retry-After honoured.

The SDK clients are built with ``max_retries=0`` so this is the only place that retries;
otherwise the SDK's retries would multiply ours.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

import structlog
import tenacity

from ai_agents.llm.failures import ProviderTransientError

log = structlog.get_logger("ai_agents.llm")

T = TypeVar("T")


class RetryPolicy:
    """Retries :class:`ProviderTransientError` only; everything else fails at once.

    ``base`` is the first backoff in seconds (doubling each attempt, plus up to the same
    again as jitter); ``sleep`` and ``jitter`` are injectable so tests neither sleep nor
    depend on chance.
    """

    def __init__(self, *, base: float = 0.5, sleep: Callable[[float], None] = time.sleep,
                 jitter: Callable[[float, float], float] = random.uniform):
        self.base = base
        self.sleep = sleep
        self.jitter = jitter

    def wait_for(self, attempt: int, exc: BaseException | None, cap: float) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based), never above ``cap``."""
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return min(float(retry_after), cap)
        backoff = self.base * (2 ** (attempt - 1))
        return min(backoff + self.jitter(0, backoff), cap)

    def run(self, fn: Callable[[], T], *, max_retries: int, cap: float, label: str) -> T:
        """Call ``fn`` until it succeeds, raises a non-transient error, or retries run out."""

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            return self.wait_for(state.attempt_number, exc, cap)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.info("llm_retry", provider=label, attempt=state.attempt_number,
                     wait_s=round(state.upcoming_sleep, 3), reason=str(exc))

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(max_retries + 1),
            wait=wait,
            retry=tenacity.retry_if_exception_type(ProviderTransientError),
            sleep=self.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        return retrying(fn)
