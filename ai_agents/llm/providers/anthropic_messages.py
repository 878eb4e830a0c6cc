"""``anthropic``: the anthropic SDK, Messages API.

Structured output is a forced tool call (``tool_choice={"type": "tool", "name": ...}``)
whose ``input_schema`` is the pydantic model's JSON schema. ``structured_mode``
json_object or instruction puts the schema in the system prompt instead; auto,
json_schema and tool all use the forced tool, the Messages API's native way.

The SDK (1.0 and later) has no ``temperature`` argument any more; it goes in ``extra_body``.
Newer models refuse a temperature (400): the provider then stops sending it and re-sends.
"""

from __future__ import annotations

import json
import os
from typing import Any

import anthropic
import structlog

from ai_agents.config.models import ProviderConfig
from ai_agents.errors import LLMAuthError, LLMRequestError
from ai_agents.llm.base import ProviderReply, ProviderRequest
from ai_agents.llm.failures import RequestShapeRejectedError, api_message_of, connection_error, status_error
from ai_agents.llm.structured import schema_json, schema_name, with_instruction
from ai_agents.llm.tools import ToolCall, ToolTurn

log = structlog.get_logger("ai_agents.llm")

DEFAULT_BASE_URL = "https://api.anthropic.com"


def wire_turns(turns: tuple[ToolTurn, ...]) -> list[dict[str, Any]]:
    """A tool conversation as Messages API messages: tool results go back as ``tool_result``
    blocks of a user message, and consecutive user-side turns share one message (the API
    wants user and assistant to alternate)."""
    out: list[dict[str, Any]] = []
    for turn in turns:
        if turn.role == "assistant":
            blocks: list[dict[str, Any]] = [{"type": "text", "text": turn.text}] if turn.text else []
            blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in turn.tool_calls]
            out.append({"role": "assistant", "content": blocks or [{"type": "text", "text": "(no answer)"}]})
            continue
        if turn.role == "tool":
            block: dict[str, Any] = {"type": "tool_result", "tool_use_id": turn.call_id or "",
                                     "content": turn.text or "(empty)", "is_error": turn.is_error}
        else:
            block = {"type": "text", "text": turn.text or "(empty)"}
        if out and out[-1]["role"] == "user":
            out[-1]["content"].append(block)
        else:
            out.append({"role": "user", "content": [block]})
    return out


class AnthropicProvider:
    """One anthropic SDK client (``max_retries=0``, config timeout) for one chain entry."""

    def __init__(self, config: ProviderConfig, *, config_path: str = "llm", sdk: anthropic.Anthropic | None = None):
        self.kind = config.provider
        self.config = config
        self.config_path = config_path
        self.vendor = "Anthropic" if not config.base_url else f"Anthropic at {config.base_url}"
        key = config.api_key.get_secret_value() if config.api_key else os.environ.get("ANTHROPIC_API_KEY") or None
        self.send_temperature = True  # until the model says it takes none
        self._missing = None if key else f"Anthropic API key missing: set ANTHROPIC_API_KEY or {config_path}.api_key"
        self._sdk = sdk
        if sdk is None and key:
            # An explicit key also stops the SDK from looking for profiles on disk.
            self._sdk = anthropic.Anthropic(api_key=key, base_url=config.base_url, timeout=config.timeout,
                                            max_retries=0)

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.config.model}"

    def missing_key(self) -> str | None:
        return self._missing

    def _params(self, request: ProviderRequest) -> tuple[dict[str, Any], str | None]:
        params: dict[str, Any] = {"model": request.model, "max_tokens": request.max_tokens,
                                  "messages": list(request.messages)}
        if self.send_temperature:
            # The Messages API takes temperature in [0, 1]; config allows OpenAI's [0, 2].
            params["extra_body"] = {"temperature": min(request.temperature, 1.0)}
        system, tool = request.system, None
        if request.tools:
            params["tools"] = [{"name": t.name, "description": t.description, "input_schema": t.parameters}
                               for t in request.tools]
            params["messages"] = wire_turns(request.turns)
        elif request.schema is not None:
            name, schema = schema_name(request.schema), schema_json(request.schema)
            if self.config.structured_mode in ("json_object", "instruction"):
                system = with_instruction(system, name, schema)
            else:
                tool = name
                params["tools"] = [{"name": name, "description": f"Return the answer as {name}.",
                                    "input_schema": schema}]
                params["tool_choice"] = {"type": "tool", "name": name}
        if system:
            params["system"] = system
        return params, tool

    def complete(self, request: ProviderRequest) -> ProviderReply:
        if self._sdk is None:
            raise LLMAuthError(self._missing or "no Anthropic client")
        params, tool = self._params(request)
        try:
            message = self._sdk.messages.create(**params)
        except anthropic.APIStatusError as e:
            said = api_message_of(e.body) or ""
            if e.status_code == 400 and self.send_temperature and "temperature" in said.lower():
                self.send_temperature = False
                log.warning("llm_temperature_unsupported", provider=self.label,
                            detail="the model refuses a temperature; sending none from now on")
                raise RequestShapeRejectedError(f"{self.vendor} refused temperature for {request.model} (400)") from e
            raise status_error(e.status_code, vendor=self.vendor, key_hint=f"set ANTHROPIC_API_KEY or "
                               f"{self.config_path}.api_key", model=request.model, config_path=self.config_path,
                               api_message=api_message_of(e.body), headers=e.response.headers) from e
        except anthropic.APIConnectionError as e:
            raise connection_error(e, vendor=self.vendor, base_url=self.config.base_url or DEFAULT_BASE_URL,
                                   timeout=self.config.timeout,
                                   timed_out=isinstance(e, anthropic.APITimeoutError)) from e
        except anthropic.AnthropicError as e:
            raise LLMRequestError(f"{self.vendor}: unusable answer ({type(e).__name__}: {str(e)[:200]})") from e
        return self._reply(message, request, tool)

    @staticmethod
    def _reply(message: Any, request: ProviderRequest, tool: str | None) -> ProviderReply:
        blocks = getattr(message, "content", None) or []
        text = "".join(getattr(b, "text", "") or "" for b in blocks if getattr(b, "type", None) == "text")
        if tool is not None:
            for block in blocks:
                if getattr(block, "type", None) == "tool_use":
                    # The model called the tool: its input is the answer, whatever text came along.
                    text = json.dumps(block.input)
                    break
        calls: tuple[ToolCall, ...] = ()
        if request.tools:
            calls = tuple(ToolCall.from_json(b.id, b.name, b.input if isinstance(b.input, dict) else None)
                          for b in blocks if getattr(b, "type", None) == "tool_use")
        usage = getattr(message, "usage", None)
        return ProviderReply(text=text, tokens_in=int(getattr(usage, "input_tokens", 0) or 0),
                             tokens_out=int(getattr(usage, "output_tokens", 0) or 0),
                             model=getattr(message, "model", None) or request.model, tool_calls=calls)

    def close(self) -> None:
        if self._sdk is not None:
            self._sdk.close()
