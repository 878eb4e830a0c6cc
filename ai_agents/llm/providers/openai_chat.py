"""``openai`` and ``openai_compatible``: the openai SDK, Chat Completions.

Structured output, by ``structured_mode``:
  json_schema  ``response_format={"type": "json_schema", ...}`` (the default for openai)
  tool         a forced function call whose parameters are the schema
  json_object  JSON mode plus the schema in the system prompt
  instruction  the schema in the system prompt only
  auto         openai: json_schema. openai_compatible: json_schema, and where the server
               rejects it (400) json_object, then instruction; what worked is remembered.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

import openai
import structlog

from ai_agents.config.models import ProviderConfig
from ai_agents.errors import LLMAuthError, LLMRequestError
from ai_agents.llm.base import ProviderReply, ProviderRequest
from ai_agents.llm.failures import (
    RequestShapeRejectedError,
    api_message_of,
    connection_error,
    status_error,
)
from ai_agents.llm.structured import schema_json, schema_name, with_instruction
from ai_agents.llm.tools import ToolCall, ToolTurn

log = structlog.get_logger("ai_agents.llm")

AUTO_LADDER = ("json_schema", "json_object", "instruction")


def wire_turn(turn: ToolTurn) -> dict[str, Any]:
    """One tool-conversation turn as a Chat Completions message."""
    if turn.role == "tool":
        return {"role": "tool", "tool_call_id": turn.call_id or "", "content": turn.text}
    if turn.role == "assistant":
        out: dict[str, Any] = {"role": "assistant", "content": turn.text or None}
        if turn.tool_calls:
            out["tool_calls"] = [{"id": c.id, "type": "function",
                                  "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
                                 for c in turn.tool_calls]
        return out
    return {"role": "user", "content": turn.text}


class OpenAIChatProvider:
    """One openai SDK client (``max_retries=0``, config timeout) for one chain entry."""

    def __init__(self, config: ProviderConfig, *, config_path: str = "llm", sdk: openai.OpenAI | None = None):
        self.kind = config.provider
        self.config = config
        self.config_path = config_path
        self.compatible = config.provider == "openai_compatible"
        self.vendor = (f"the OpenAI-compatible server at {config.base_url}" if self.compatible else "OpenAI")
        self._mode_lock = threading.Lock()
        self._ladder_at = 0  # index into AUTO_LADDER for openai_compatible in auto mode
        key = config.api_key.get_secret_value() if config.api_key else None
        if key is None and not self.compatible:
            # Only the real OpenAI gets OPENAI_API_KEY: sending it to another server would leak it.
            key = os.environ.get("OPENAI_API_KEY") or None
        self._missing = None
        if key is None and not self.compatible:
            self._missing = f"OpenAI API key missing: set OPENAI_API_KEY or {config_path}.api_key"
        self._sdk = sdk
        if sdk is None and self._missing is None:
            # Local servers often need no key, but the SDK insists on one.
            self._sdk = openai.OpenAI(api_key=key or "no-key-configured", base_url=config.base_url,
                                      timeout=config.timeout, max_retries=0)

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.config.model}"

    @property
    def key_hint(self) -> str:
        if self.compatible:
            return f"set {self.config_path}.api_key to the key that server expects"
        return f"set OPENAI_API_KEY or {self.config_path}.api_key"

    def missing_key(self) -> str | None:
        return self._missing

    def structured_mode(self) -> str:
        """The mode the next structured request will use."""
        mode = self.config.structured_mode
        if mode != "auto":
            return mode
        if not self.compatible:
            return "json_schema"
        with self._mode_lock:
            return AUTO_LADDER[self._ladder_at]

    def _step_down(self, mode: str) -> bool:
        """After a 400 in auto mode: move past ``mode`` if there is a next one. True if moved."""
        if not self.compatible or self.config.structured_mode != "auto":
            return False
        with self._mode_lock:
            at = AUTO_LADDER.index(mode)
            if at + 1 >= len(AUTO_LADDER):
                return False
            self._ladder_at = max(self._ladder_at, at + 1)
        log.warning("llm_structured_mode_fallback", provider=self.label, rejected=mode,
                    next=AUTO_LADDER[at + 1])
        return True

    def _params(self, request: ProviderRequest, mode: str | None) -> dict[str, Any]:
        system = request.system
        params: dict[str, Any] = {"model": request.model, "temperature": request.temperature}
        # The real API wants max_completion_tokens (o-series reject max_tokens); most
        # compatible servers only know max_tokens.
        params["max_tokens" if self.compatible else "max_completion_tokens"] = request.max_tokens
        if request.schema is not None and mode is not None:
            name, schema = schema_name(request.schema), schema_json(request.schema)
            if mode == "json_schema":
                params["response_format"] = {"type": "json_schema",
                                             "json_schema": {"name": name, "schema": schema, "strict": False}}
            elif mode == "tool":
                params["tools"] = [{"type": "function", "function": {
                    "name": name, "description": f"Return the answer as {name}.", "parameters": schema}}]
                params["tool_choice"] = {"type": "function", "function": {"name": name}}
            else:
                system = with_instruction(system, name, schema)
                if mode == "json_object":
                    params["response_format"] = {"type": "json_object"}
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
        if request.tools:
            params["tools"] = [{"type": "function", "function": {
                "name": t.name, "description": t.description, "parameters": t.parameters}} for t in request.tools]
            params["messages"] = messages + [wire_turn(t) for t in request.turns]
            return params
        params["messages"] = messages + list(request.messages)
        return params

    def complete(self, request: ProviderRequest) -> ProviderReply:
        if self._sdk is None:
            raise LLMAuthError(self._missing or "no OpenAI client")
        mode = self.structured_mode() if request.schema is not None else None
        try:
            completion = self._sdk.chat.completions.create(**self._params(request, mode))
        except openai.APIStatusError as e:
            if e.status_code == 400 and mode is not None and self._step_down(mode):
                raise RequestShapeRejectedError(f"{self.vendor} rejected structured mode {mode} (400)") from e
            raise status_error(e.status_code, vendor=self.vendor, key_hint=self.key_hint, model=request.model,
                               config_path=self.config_path, api_message=api_message_of(e.body),
                               headers=e.response.headers) from e
        except openai.APIConnectionError as e:
            raise connection_error(e, vendor=self.vendor, base_url=str(self._sdk.base_url),
                                   timeout=self.config.timeout,
                                   timed_out=isinstance(e, openai.APITimeoutError)) from e
        except openai.OpenAIError as e:
            raise LLMRequestError(f"{self.vendor}: unusable answer ({type(e).__name__}: {str(e)[:200]})") from e
        return self._reply(completion, request, mode)

    @staticmethod
    def _reply(completion: Any, request: ProviderRequest, mode: str | None) -> ProviderReply:
        choices = getattr(completion, "choices", None) or []
        message = choices[0].message if choices else None
        # A refusal comes with content None; its text then shows up in any LLMOutputError.
        text = (getattr(message, "content", None) or getattr(message, "refusal", None) or "") if message else ""
        if mode == "tool" and message is not None and message.tool_calls:
            call = message.tool_calls[0]
            function = getattr(call, "function", None)
            if function is not None:
                text = function.arguments if isinstance(function.arguments, str) else json.dumps(function.arguments)
        calls: tuple[ToolCall, ...] = ()
        if request.tools and message is not None:
            calls = tuple(ToolCall.from_json(c.id, c.function.name, c.function.arguments)
                          for c in message.tool_calls or [] if getattr(c, "function", None) is not None)
        usage = getattr(completion, "usage", None)
        return ProviderReply(text=text, tokens_in=int(getattr(usage, "prompt_tokens", 0) or 0),
                             tokens_out=int(getattr(usage, "completion_tokens", 0) or 0),
                             model=getattr(completion, "model", None) or request.model, tool_calls=calls)

    def close(self) -> None:
        if self._sdk is not None:
            self._sdk.close()
