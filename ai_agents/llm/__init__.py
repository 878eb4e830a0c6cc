"""LLM access: one client over a chain of providers, with retries, fallback, cache, usage and budget."""

from ai_agents.llm.base import LLMResponse, Provider, ProviderReply, ProviderRequest
from ai_agents.llm.client import LLMClient
from ai_agents.llm.ratelimit import RateLimiter
from ai_agents.llm.retry import RetryPolicy
from ai_agents.llm.script import Script

__all__ = [
    "LLMClient",
    "LLMResponse",
    "Provider",
    "ProviderReply",
    "ProviderRequest",
    "RateLimiter",
    "RetryPolicy",
    "Script",
]
