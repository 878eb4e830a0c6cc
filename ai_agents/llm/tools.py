"""Native tool calling: the typed values that cross the LLM layer for an agent's tool loop.

A tool conversation is a list of :class:`ToolTurn` (user text, assistant text with tool
calls, tool results). Each provider translates it to its wire format (OpenAI ``tools`` and
``tool`` messages, Anthropic ``tool_use`` / ``tool_result`` blocks, the scripted model's
rules) and answers with a :class:`ToolReply`. Nothing here imports an SDK.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

TOOLS_SCHEMA = "tools"
"""The pseudo schema name a tool request carries in scripts and in the fake server."""


class ToolSpec(BaseModel):
    """One tool the model may call: its name, what it does, and its arguments' JSON schema."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str
    parameters: dict[str, Any]

    @classmethod
    def from_model(cls, name: str, description: str, args: type[BaseModel]) -> ToolSpec:
        schema = args.model_json_schema()
        schema.pop("title", None)
        return cls(name=name, description=description, parameters=schema)


class ToolCall(BaseModel):
    """One call the model made. ``arguments_error`` says why its arguments were unreadable."""

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    arguments_error: str | None = None

    @classmethod
    def from_json(cls, id: str, name: str, raw: str | dict[str, Any] | None) -> ToolCall:
        """Parse the arguments the wire carried (a JSON string for OpenAI, an object for Anthropic)."""
        if isinstance(raw, dict):
            return cls(id=id, name=name, arguments=raw)
        try:
            value = json.loads(raw or "{}")
        except json.JSONDecodeError as e:
            return cls(id=id, name=name, arguments_error=f"arguments are not valid JSON: {e}")
        if not isinstance(value, dict):
            return cls(id=id, name=name, arguments_error="arguments must be a JSON object")
        return cls(id=id, name=name, arguments=value)


class ToolTurn(BaseModel):
    """One entry of a tool conversation.

    user: ``text``. assistant: ``text`` and ``tool_calls``. tool: the result of the call
    ``call_id`` (of tool ``tool_name``) in ``text``, ``is_error`` when the tool refused.
    """

    role: Literal["user", "assistant", "tool"]
    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    call_id: str | None = None
    tool_name: str | None = None
    is_error: bool = False


class ToolReply(BaseModel):
    """What a tool request returned, with the usage that was recorded in ``llm_calls``."""

    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    provider: str = ""
    model: str = ""
    latency_ms: float = 0.0


def turn_texts(turns: list[ToolTurn] | tuple[ToolTurn, ...]) -> list[str]:
    """Every text of a conversation (tool calls as JSON), for scripts and token estimates."""
    texts: list[str] = []
    for t in turns:
        if t.text:
            texts.append(t.text)
        texts += [json.dumps({"tool": c.name, **c.arguments}) for c in t.tool_calls]
    return texts


def scripted_reply(reply: Any, ids: Any) -> tuple[str, list[ToolCall]]:
    """A script's answer to a tool request: a string is text; a mapping is
    ``{text: ..., tool_calls: [{name: ..., arguments: {...}}, ...]}``. ``ids`` yields call ids."""
    if isinstance(reply, str):
        return reply, []
    if not isinstance(reply, dict):
        return json.dumps(reply), []
    calls = [ToolCall(id=f"call_{next(ids)}", name=str(c.get("name", "")), arguments=dict(c.get("arguments") or {}))
             for c in reply.get("tool_calls") or [] if isinstance(c, dict)]
    return str(reply.get("text") or ""), calls
