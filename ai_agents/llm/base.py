"""The one interface every provider implements, and the values that cross it.

A provider turns one :class:`ProviderRequest` into one :class:`ProviderReply` with a
single HTTP request (or none, for ``scripted``). It never retries, never falls back,
never caches: the chain and the client do that, once, for every provider.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel

from ai_agents.config.models import ProviderConfig
from ai_agents.llm.tools import ToolCall, ToolSpec, ToolTurn

Message = dict[str, str]


class LLMResponse(BaseModel):
    """The answer to :meth:`LLMClient.generate`."""

    text: str
    tokens_in: int = 0
    tokens_out: int = 0
    provider: str
    model: str
    latency_ms: float = 0.0
    cached: bool = False
    tool_calls: list[ToolCall] = []


@dataclass(frozen=True)
class ProviderRequest:
    """Everything a provider needs for one call, already resolved from config."""

    messages: list[Message]
    model: str
    temperature: float
    max_tokens: int
    system: str | None = None
    schema: type[BaseModel] | None = None
    agent: str | None = None
    tools: tuple[ToolSpec, ...] = ()
    """A tool request: the model may call these; the conversation is ``turns``, not ``messages``."""
    turns: tuple[ToolTurn, ...] = ()


@dataclass(frozen=True)
class ProviderReply:
    """What came back. For structured requests ``text`` is the JSON text to validate."""

    text: str
    tokens_in: int
    tokens_out: int
    model: str
    tool_calls: tuple[ToolCall, ...] = ()


class Provider(Protocol):
    """One entry of the provider chain (``llm`` or an ``llm.fallback`` item)."""

    kind: str
    """The config's ``provider`` value: openai, anthropic, openai_compatible or scripted."""
    config: ProviderConfig
    config_path: str
    """Where this entry lives in config.yaml ("llm", "llm.fallback[0]"), for error messages."""

    @property
    def label(self) -> str:
        """Short name for logs: ``kind:model``."""
        ...

    def missing_key(self) -> str | None:
        """A sentence saying which key to set, or None when the provider has what it needs."""
        ...

    def complete(self, request: ProviderRequest) -> ProviderReply:
        """One call. Raises only :class:`ai_agents.errors.AgentsError` subclasses."""
        ...

    def close(self) -> None:
        """Release HTTP connections."""
        ...
