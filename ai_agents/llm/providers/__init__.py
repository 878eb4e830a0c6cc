"""Provider adapters behind one interface (:class:`ai_agents.llm.base.Provider`).

Each vendor SDK is imported only when a chain entry uses it: importing both the openai and
the anthropic SDK costs about a second at every start, most of a restart's recovery time.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ai_agents.config.models import ProviderConfig
from ai_agents.llm.base import Provider

if TYPE_CHECKING:
    from ai_agents.llm.providers.anthropic_messages import AnthropicProvider
    from ai_agents.llm.providers.openai_chat import OpenAIChatProvider
    from ai_agents.llm.providers.scripted import ScriptedProvider

_MODULES = {"AnthropicProvider": "anthropic_messages", "OpenAIChatProvider": "openai_chat",
            "ScriptedProvider": "scripted"}
_BY_PROVIDER = {"openai": "OpenAIChatProvider", "openai_compatible": "OpenAIChatProvider",
                "anthropic": "AnthropicProvider", "scripted": "ScriptedProvider"}


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return getattr(importlib.import_module(f"{__name__}.{_MODULES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_provider(config: ProviderConfig, config_path: str = "llm") -> Provider:
    """The adapter for one chain entry. A missing API key does not raise here: the
    provider reports it (``missing_key``) and fails its calls with LLMAuthError, so
    the rest of the chain and ``doctor`` still work."""
    name = _BY_PROVIDER.get(config.provider)
    if name is None:
        raise ValueError(f"unknown provider {config.provider!r}")
    provider: Provider = __getattr__(name)(config, config_path=config_path)
    return provider


__all__ = ["AnthropicProvider", "OpenAIChatProvider", "ScriptedProvider", "build_provider"]
