"""The provider chain: ``llm`` then each ``llm.fallback`` entry, each behind its rate limiter and
the retry policy, every HTTP attempt recorded in ``llm_calls``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import structlog

from ai_agents.config.live import LiveConfig
from ai_agents.errors import AgentsError, LLMAuthError, LLMRequestError, LLMUnavailableError
from ai_agents.llm.base import LLMResponse, Provider, ProviderRequest
from ai_agents.llm.failures import RequestShapeRejectedError, check_reply, classify
from ai_agents.llm.ratelimit import RateLimiter
from ai_agents.llm.retry import RetryPolicy
from ai_agents.llm.usage import Pricer
from ai_agents.memory.store import MemoryStore

log = structlog.get_logger("ai_agents.llm")

# A provider that fails with one of these is skipped for the next one.
_NEXT_PROVIDER = (LLMUnavailableError, LLMAuthError, LLMRequestError)


class ProviderChain:
    """Runs one request through the chain until a provider answers."""

    def __init__(self, providers: Sequence[Provider], *, live: LiveConfig, memory: MemoryStore,
                 retry: RetryPolicy, limiters: Sequence[RateLimiter], pricer: Pricer):
        if not providers:
            raise ValueError("the provider chain needs at least one provider")
        if len(limiters) != len(providers):
            raise ValueError("one rate limiter per provider")
        self.providers = tuple(providers)
        self.live = live
        self.memory = memory
        self.retry = retry
        self.limiters = tuple(limiters)
        self.pricer = pricer

    def run(self, request: ProviderRequest, *, task_id: str | None, only: int | None = None,
            max_retries: int | None = None) -> LLMResponse:
        """Answer ``request`` (whose model is the primary's) from the first provider that can.

        ``only`` restricts the run to one provider (doctor). When all fail: LLMUnavailableError
        if any failure was transient, else the last fatal error.
        """
        indexes = [only] if only is not None else list(range(len(self.providers)))
        failures: list[tuple[str, AgentsError]] = []
        for n, i in enumerate(indexes):
            provider = self.providers[i]
            if n > 0:
                log.warning("llm_fallback", **{"from": failures[-1][0], "to": provider.label,
                                               "reason": str(failures[-1][1])})
            req = request if i == 0 else dataclasses.replace(request, model=provider.config.model)
            try:
                return self._with_retries(i, req, task_id, max_retries)
            except _NEXT_PROVIDER as e:
                failures.append((provider.label, e))
        transient = [(label, e) for label, e in failures if isinstance(e, LLMUnavailableError)]
        if transient:
            summary = "; ".join(f"{label}: {e}" for label, e in failures)
            raise LLMUnavailableError(f"every LLM provider failed ({summary})") from transient[-1][1]
        raise failures[-1][1]

    def _with_retries(self, i: int, request: ProviderRequest, task_id: str | None,
                      max_retries: int | None) -> LLMResponse:
        settings = self.live.current.llm
        retries = settings.max_retries if max_retries is None else max_retries
        return self.retry.run(lambda: self._attempt(i, request, task_id), max_retries=retries,
                              cap=settings.retry_max_wait, label=self.providers[i].label)

    def _attempt(self, i: int, request: ProviderRequest, task_id: str | None) -> LLMResponse:
        """One HTTP attempt (plus free re-sends after a structured-mode downgrade)."""
        provider = self.providers[i]
        while True:
            self.limiters[i].acquire()
            started = time.perf_counter()
            try:
                reply = provider.complete(request)
                check_reply(reply, label=provider.label)
            except Exception as raised:
                # The one error-mapping point: whatever the SDK raised becomes a classified error.
                e = classify(raised, label=provider.label)
                latency_ms = (time.perf_counter() - started) * 1000
                self.memory.record_llm_call(agent=request.agent, task_id=task_id, provider=provider.kind,
                                            model=request.model, latency_ms=latency_ms, price_known=True,
                                            error=f"{type(e).__name__}: {e}"[:500])
                log.warning("llm_attempt_failed", provider=provider.kind, model=request.model,
                            latency_ms=round(latency_ms, 1), agent=request.agent, task_id=task_id,
                            error_type=type(e).__name__, error=str(e),
                            kind=getattr(e, "kind", None), raised=type(raised).__name__)
                if isinstance(e, RequestShapeRejectedError):
                    continue
                if e is raised:
                    raise
                raise e from raised
            latency_ms = (time.perf_counter() - started) * 1000
            cost, known = self.pricer.cost(reply.model, reply.tokens_in, reply.tokens_out, self.live.current.llm.prices)
            self.memory.record_llm_call(agent=request.agent, task_id=task_id, provider=provider.kind,
                                        model=reply.model, tokens_in=reply.tokens_in, tokens_out=reply.tokens_out,
                                        cost_usd=cost, price_known=known, latency_ms=latency_ms)
            log.info("llm_call", provider=provider.kind, model=reply.model, latency_ms=round(latency_ms, 1),
                     tokens_in=reply.tokens_in, tokens_out=reply.tokens_out, cost_usd=round(cost, 6),
                     agent=request.agent, task_id=task_id, cached=False)
            return LLMResponse(text=reply.text, tokens_in=reply.tokens_in, tokens_out=reply.tokens_out,
                               provider=provider.kind, model=reply.model, latency_ms=latency_ms,
                               tool_calls=list(reply.tool_calls))
