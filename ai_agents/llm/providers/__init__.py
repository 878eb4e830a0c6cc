"""Provider adapters behind one interface (:class:`ai_agents.llm.base.Provider`)."""

from __future__ import annotations

from ai_agents.config.models import ProviderConfig
from ai_agents.llm.base import Provider
from ai_agents.llm.providers.anthropic_messages import AnthropicProvider
from ai_agents.llm.providers.openai_chat import OpenAIChatProvider
from ai_agents.llm.providers.scripted import ScriptedProvider


def build_provider(config: ProviderConfig, config_path: str = "llm") -> Provider:
    """The adapter for one chain entry. A missing API key does not raise here: the
    provider reports it (``missing_key``) and fails its calls with LLMAuthError, so
    the rest of the chain and ``doctor`` still work."""
    if config.provider in ("openai", "openai_compatible"):
        return OpenAIChatProvider(config, config_path=config_path)
    if config.provider == "anthropic":
        return AnthropicProvider(config, config_path=config_path)
    if config.provider == "scripted":
        return ScriptedProvider(config, config_path=config_path)
    raise ValueError(f"unknown provider {config.provider!r}")


__all__ = ["AnthropicProvider", "OpenAIChatProvider", "ScriptedProvider", "build_provider"]
