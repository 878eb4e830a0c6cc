"""LLMClient: the one way the daemon talks to language models.

Per call it reads the live config (temperature, max_tokens, per-agent overrides, prices,
cache, budget), looks in the response cache, checks the daily budget, then runs the
provider chain (rate limit, retries, fallback). Structured answers are validated against
a pydantic model, with one repair round trip before :class:`LLMOutputError`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import structlog
from pydantic import BaseModel

from ai_agents.config.live import LiveConfig
from ai_agents.domain import Role
from ai_agents.errors import LLMOutputError
from ai_agents.llm.base import LLMResponse, Message, Provider, ProviderRequest
from ai_agents.llm.cache import ResponseCache, cache_key
from ai_agents.llm.chain import ProviderChain
from ai_agents.llm.providers import build_provider
from ai_agents.llm.ratelimit import RateLimiter
from ai_agents.llm.retry import RetryPolicy
from ai_agents.llm.structured import parse_answer, repair_message, schema_json, schema_name
from ai_agents.llm.tools import ToolReply, ToolSpec, ToolTurn
from ai_agents.llm.usage import BudgetGuard, Pricer
from ai_agents.memory.store import MemoryStore

log = structlog.get_logger("ai_agents.llm")

M = TypeVar("M", bound=BaseModel)
Messages = str | Sequence[dict[str, str]]


@dataclass(frozen=True)
class _Options:
    use_cache: bool = True
    check_budget: bool = True
    only: int | None = None
    max_retries: int | None = None


_DOCTOR = _Options(use_cache=False, check_budget=False, max_retries=0)


def normalize_messages(messages: Messages, system: str | None) -> tuple[list[Message], str | None]:
    """A str is one user message; ``system`` entries of a list are folded into the system prompt."""
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}], system
    out: list[Message] = []
    systems = [system] if system else []
    for i, m in enumerate(messages):
        role, content = m.get("role"), m.get("content")
        if not isinstance(content, str):
            raise ValueError(f"messages[{i}].content must be a string")
        if role == "system":
            systems.append(content)
        elif role in ("user", "assistant"):
            out.append({"role": role, "content": content})
        else:
            raise ValueError(f"messages[{i}].role must be user or assistant, not {role!r}")
    if not out:
        raise ValueError("messages holds no user or assistant message")
    return out, "\n\n".join(systems) if systems else None


class LLMClient:
    """Thread-safe; one per process. Build it with :meth:`from_config`."""

    def __init__(self, live: LiveConfig, memory: MemoryStore, providers: Sequence[Provider], *,
                 retry: RetryPolicy | None = None, limiters: Sequence[RateLimiter] | None = None,
                 budget: BudgetGuard | None = None, pricer: Pricer | None = None):
        self.live = live
        self.memory = memory
        self.cache = ResponseCache(memory)
        self.budget = budget or BudgetGuard(live, memory)
        if limiters is None:
            limiters = [RateLimiter(p.config.requests_per_minute, label=p.label) for p in providers]
        self.chain = ProviderChain(providers, live=live, memory=memory, retry=retry or RetryPolicy(),
                                   limiters=limiters, pricer=pricer or Pricer())
        self._schemas: dict[type[BaseModel], dict[str, Any]] = {}

    @classmethod
    def from_config(cls, live: LiveConfig, memory: MemoryStore, *, retry: RetryPolicy | None = None) -> LLMClient:
        """Build every provider of ``llm`` and ``llm.fallback`` from the current settings."""
        llm = live.current.llm
        providers = [build_provider(llm, "llm")]
        providers += [build_provider(fb, f"llm.fallback[{i}]") for i, fb in enumerate(llm.fallback)]
        return cls(live, memory, providers, retry=retry)

    @property
    def providers(self) -> tuple[Provider, ...]:
        """The chain, primary first."""
        return self.chain.providers

    # --- public API ------------------------------------------------------------------
    def generate(self, messages: Messages, *, system: str | None = None, temperature: float | None = None,
                 max_tokens: int | None = None, agent: str | None = None, task_id: str | None = None) -> LLMResponse:
        """Plain text answer. Raises BudgetExceeded, LLMUnavailableError, LLMAuthError, LLMRequestError."""
        request = self._request(messages, system, temperature, max_tokens, agent, None)
        return self._text(request, task_id, _Options())

    def generate_structured(self, messages: Messages, schema: type[M], *, system: str | None = None,
                            temperature: float | None = None, max_tokens: int | None = None,
                            agent: str | None = None, task_id: str | None = None) -> M:
        """An instance of ``schema``, validated; LLMOutputError after one failed repair round."""
        request = self._request(messages, system, temperature, max_tokens, agent, schema)
        return self._structured(request, schema, task_id, _Options())

    def run_tools(self, turns: Sequence[ToolTurn], tools: Sequence[ToolSpec], *, system: str | None = None,
                  max_tokens: int | None = None, agent: str | None = None,
                  task_id: str | None = None) -> ToolReply:
        """One turn of a tool conversation through the chain: the model answers with text and/or
        tool calls. Never cached (the conversation is the state); the daily budget is checked
        and usage recorded in ``llm_calls`` as for every call."""
        if not turns or turns[0].role != "user":
            raise ValueError("a tool conversation starts with a user turn")
        if not tools:
            raise ValueError("a tool request needs at least one tool")
        base = self._request("(tool conversation)", system, None, max_tokens, agent, None)
        request = replace(base, messages=[], tools=tuple(tools), turns=tuple(turns))
        response, _ = self._fetch(request, task_id, replace(_Options(), use_cache=False))
        return ToolReply(text=response.text, tool_calls=response.tool_calls, tokens_in=response.tokens_in,
                         tokens_out=response.tokens_out, provider=response.provider, model=response.model,
                         latency_ms=response.latency_ms)

    def probe(self, index: int, messages: Messages, *, schema: type[M] | None = None) -> LLMResponse | M:
        """One call to provider ``index`` alone: no cache, no budget check, no retries (for doctor)."""
        request = self._request(messages, None, None, None, "doctor", schema)
        model = self.providers[index].config.model
        request = replace(request, model=model)
        options = replace(_DOCTOR, only=index)
        if schema is None:
            return self._text(request, None, options)
        return self._structured(request, schema, None, options)

    def budget_status(self) -> dict[str, Any]:
        """Today's (UTC) tokens and cost, per agent, the limits and what remains."""
        return self.budget.status()

    def check_budget(self) -> None:
        """Raise BudgetExceeded when today's usage reached ``budget.daily_usd`` or ``daily_tokens``."""
        self.budget.check()

    def close(self) -> None:
        for provider in self.providers:
            provider.close()

    # --- internals ---------------------------------------------------------------------
    def _request(self, messages: Messages, system: str | None, temperature: float | None, max_tokens: int | None,
                 agent: str | None, schema: type[BaseModel] | None) -> ProviderRequest:
        settings = self.live.current
        msgs, system = normalize_messages(messages, system)
        try:
            agent_cfg = settings.agents.for_role(Role(agent)) if agent else None
        except ValueError:
            agent_cfg = None  # not a role (e.g. "doctor"): the llm defaults apply
        if temperature is None:
            temperature = agent_cfg.temperature if agent_cfg and agent_cfg.temperature is not None \
                else settings.llm.temperature
        if max_tokens is None:
            max_tokens = agent_cfg.max_tokens if agent_cfg and agent_cfg.max_tokens is not None \
                else settings.llm.max_tokens
        model = (agent_cfg.model if agent_cfg else None) or self.providers[0].config.model
        return ProviderRequest(messages=msgs, model=model, temperature=temperature, max_tokens=max_tokens,
                               system=system, schema=schema, agent=agent)

    def _schema_json(self, schema: type[BaseModel]) -> dict[str, Any]:
        found = self._schemas.get(schema)
        if found is None:
            found = self._schemas[schema] = schema_json(schema)
        return found

    def _fetch(self, request: ProviderRequest, task_id: str | None,
               options: _Options) -> tuple[LLMResponse, str | None]:
        """The answer from the cache or the chain, and the cache key to store a good answer under."""
        settings = self.live.current
        key = None
        if options.use_cache and settings.llm.cache.enabled:
            head = self.providers[0]
            started = time.perf_counter()
            key = cache_key(provider=head.kind, base_url=head.config.base_url, model=request.model,
                            messages=request.messages, system=request.system, temperature=request.temperature,
                            max_tokens=request.max_tokens,
                            schema=self._schema_json(request.schema) if request.schema else None)
            hit = self.cache.get(key)
            if hit is not None:
                latency_ms = (time.perf_counter() - started) * 1000
                self.memory.record_llm_call(agent=request.agent, task_id=task_id, provider=hit["provider"],
                                            model=hit["model"], latency_ms=latency_ms, cached=True)
                log.info("llm_call", provider=hit["provider"], model=hit["model"], latency_ms=round(latency_ms, 1),
                         tokens_in=0, tokens_out=0, cost_usd=0.0, agent=request.agent, task_id=task_id, cached=True)
                return LLMResponse(text=hit["text"], provider=hit["provider"], model=hit["model"],
                                   latency_ms=latency_ms, cached=True), key
        if options.check_budget:
            self.budget.check()
        return self.chain.run(request, task_id=task_id, only=options.only, max_retries=options.max_retries), key

    def _store(self, key: str | None, response: LLMResponse) -> None:
        if key is not None and not response.cached:
            self.cache.put(key, text=response.text, provider=response.provider, model=response.model,
                           ttl_seconds=self.live.current.llm.cache.ttl_seconds)

    def _text(self, request: ProviderRequest, task_id: str | None, options: _Options) -> LLMResponse:
        response, key = self._fetch(request, task_id, options)
        self._store(key, response)
        return response

    def _structured(self, request: ProviderRequest, schema: type[M], task_id: str | None, options: _Options) -> M:
        name = schema_name(schema)
        response, key = self._fetch(request, task_id, options)
        value, problem = parse_answer(response.text, schema)
        if value is None and response.cached:
            # A cached answer that no longer validates: ask afresh rather than repair it, and
            # keep the key so the good answer replaces the bad entry.
            response, _ = self._fetch(request, task_id, replace(options, use_cache=False))
            value, problem = parse_answer(response.text, schema)
        if value is None:
            log.warning("llm_output_repair", schema=name, problem=problem, provider=response.provider,
                        agent=request.agent, task_id=task_id)
            repair = replace(request, messages=[
                *request.messages,
                {"role": "assistant", "content": response.text or "(empty answer)"},
                {"role": "user", "content": repair_message(problem, name, self._schema_json(schema))},
            ])
            response, _ = self._fetch(repair, task_id, replace(options, use_cache=False))
            value, problem = parse_answer(response.text, schema)
            if value is None:
                log.error("llm_output_invalid", schema=name, problem=problem, provider=response.provider,
                          agent=request.agent, task_id=task_id)
                raise LLMOutputError(f"the model's answer for schema {name} is unusable after one repair round: "
                                     f"{problem}; answer starts: {response.text[:200]!r}")
        self._store(key, response)
        return value
