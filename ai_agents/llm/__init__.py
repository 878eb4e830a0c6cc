"""LLM access: one client over a chain of providers, with retries, fallback, cache, usage and budget.

Exports are loaded on first use (PEP 562) so that light users such as
``ai_agents.llm.script`` (the fake server, the demo) do not pay for importing both SDKs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "LLMClient": "ai_agents.llm.client",
    "LLMResponse": "ai_agents.llm.base",
    "Provider": "ai_agents.llm.base",
    "ProviderReply": "ai_agents.llm.base",
    "ProviderRequest": "ai_agents.llm.base",
    "RateLimiter": "ai_agents.llm.ratelimit",
    "RetryPolicy": "ai_agents.llm.retry",
    "Script": "ai_agents.llm.script",
    "check_llm_chain": "ai_agents.llm.doctor",
}

__all__ = [
    "LLMClient",
    "LLMResponse",
    "Provider",
    "ProviderReply",
    "ProviderRequest",
    "RateLimiter",
    "RetryPolicy",
    "Script",
    "check_llm_chain",
]

if TYPE_CHECKING:
    from ai_agents.llm.base import LLMResponse, Provider, ProviderReply, ProviderRequest
    from ai_agents.llm.client import LLMClient
    from ai_agents.llm.doctor import check_llm_chain
    from ai_agents.llm.ratelimit import RateLimiter
    from ai_agents.llm.retry import RetryPolicy
    from ai_agents.llm.script import Script


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ai_agents.llm' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
