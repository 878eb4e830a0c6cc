"""``doctor`` for the LLM chain: is each provider reachable, and does structured output work?"""

from __future__ import annotations

import time

from pydantic import BaseModel

from ai_agents.domain import CheckResult
from ai_agents.errors import AgentsError
from ai_agents.llm.client import LLMClient
from ai_agents.llm.failures import ProviderTransientError
from ai_agents.llm.providers.scripted import ScriptedProvider
from ai_agents.llm.script import ScriptNoMatchError


class DoctorPing(BaseModel):
    """The tiny schema of the structured check (scripts can answer it with ``schema: DoctorPing``)."""

    ok: bool


PLAIN_PROMPT = "Health check: reply with the single word ok."
STRUCTURED_PROMPT = "Health check: reply with a JSON object whose field ok is true."


def _problem(exc: BaseException) -> str:
    """One sentence: the error messages of our providers already say what to fix."""
    text = str(exc).strip() or type(exc).__name__
    return text if text.endswith(".") else text + "."


def _rate_limited(exc: BaseException) -> ProviderTransientError | None:
    """The 429 behind an error (the chain wraps a provider's failure as its cause), if that is what it was."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ProviderTransientError) and seen.kind == "rate_limited":
            return seen
        seen = seen.__cause__
    return None


def check_llm_chain(client: LLMClient) -> list[CheckResult]:
    """One result per provider of the chain: a plain call and a structured call, each made
    to that provider alone, bypassing the cache and the budget, without retries.

    A missing API key for openai/anthropic is reported without any call. A ``scripted``
    provider whose script has no rule for the ping is fine: the script loaded, and
    scripts answer the daemon's questions, not the doctor's.
    """
    results = []
    for i, provider in enumerate(client.providers):
        name = provider.config_path  # "llm", "llm.fallback[0]": where to fix it
        data: dict[str, object] = {"provider": provider.kind, "model": provider.config.model,
                                   "base_url": provider.config.base_url, "reachable": False}
        missing = provider.missing_key()
        if missing:
            results.append(CheckResult(name, False, missing, data))
            continue
        started = time.perf_counter()
        try:
            client.probe(i, PLAIN_PROMPT)
            data["reachable"] = True
            data["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
            client.probe(i, STRUCTURED_PROMPT, schema=DoctorPing)
        except ScriptNoMatchError:
            script = provider.script if isinstance(provider, ScriptedProvider) else None
            rules = len(script.rules) if script else 0
            results.append(CheckResult(name, True, f"{provider.label}: {rules} rules loaded, no network "
                                       "(the script has no rule for the doctor's ping)", data))
            continue
        except AgentsError as e:
            limited = _rate_limited(e)
            if limited is not None:
                # A 429 proves the endpoint, the key and the model are accepted: the provider is there,
                # just busy. The daemon waits and retries such answers, so this is not a failure.
                data |= {"reachable": True, "rate_limited": True, "retry_after": limited.retry_after}
                results.append(CheckResult(name, True, f"{provider.label}: reachable, rate-limited (429): "
                                           "structured output not checked; run doctor again later", data))
                continue
            stage = "structured output failed: " if data["reachable"] else ""
            data["error_type"] = type(e).__name__
            results.append(CheckResult(name, False, stage + _problem(e), data))
            continue
        results.append(CheckResult(
            name, True, f"{provider.label}: reachable, {data['latency_ms']} ms, structured output works", data))
    return results
