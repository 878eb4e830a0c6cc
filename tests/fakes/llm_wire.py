"""Wire formats of the fake LLM server: reading OpenAI Chat Completions and Anthropic Messages
requests, and writing their answers and errors, plus a minimal JSON value for a JSON schema.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from ai_agents.llm.structured import schema_from_instruction
from ai_agents.llm.tools import TOOLS_SCHEMA

_ids = itertools.count(1)


@dataclass
class WireRequest:
    """What the fake needs to know about one request, whichever API it came through."""

    api: str  # "openai" or "anthropic"
    model: str
    texts: list[str] = field(default_factory=list)  # system prompt and every message's text
    mode: str | None = None  # json_schema, json_object, tool, instruction, tools; None = plain text
    schema_name: str | None = None
    schema: dict[str, Any] | None = None
    temperature: float | None = None

    @property
    def structured(self) -> bool:
        return self.mode is not None and self.mode != TOOLS_SCHEMA

    @property
    def agentic(self) -> bool:
        """A tool loop's request: tools offered, none forced; answered with text or tool calls."""
        return self.mode == TOOLS_SCHEMA


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict):
                for key in ("text", "content"):
                    if key in block:
                        parts.append(_text_of(block[key]))
                if "input" in block:
                    parts.append(json.dumps(block["input"]))
        return "\n".join(parts)
    return "" if content is None else json.dumps(content)


def _from_instruction(req: WireRequest, mode_if_found: str) -> None:
    for text in req.texts:
        found = schema_from_instruction(text)
        if found:
            req.schema_name, req.schema = found
            req.mode = mode_if_found
            return


def _openai_text(message: dict[str, Any]) -> str:
    text = _text_of(message.get("content"))
    calls = [c.get("function") or {} for c in message.get("tool_calls") or [] if isinstance(c, dict)]
    return "\n".join([text] + [f"{c.get('name')} {c.get('arguments')}" for c in calls]) if calls else text


def parse_openai(body: dict[str, Any]) -> WireRequest:
    req = WireRequest("openai", str(body.get("model", "")),
                      [_openai_text(m) for m in body.get("messages") or [] if isinstance(m, dict)],
                      temperature=body.get("temperature"))
    rf = body.get("response_format") or {}
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and "function" in t]
    if rf.get("type") == "json_schema":
        js = rf.get("json_schema") or {}
        req.mode, req.schema_name, req.schema = "json_schema", js.get("name"), js.get("schema")
    elif tools and not isinstance(body.get("tool_choice"), dict):
        req.mode = req.schema_name = TOOLS_SCHEMA
    elif tools:
        choice = body.get("tool_choice")
        wanted = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
        fn = next((t["function"] for t in tools if t["function"].get("name") == wanted), tools[0]["function"])
        req.mode, req.schema_name, req.schema = "tool", fn.get("name"), fn.get("parameters")
    elif rf.get("type") == "json_object":
        req.mode = "json_object"
        _from_instruction(req, "json_object")
    else:
        _from_instruction(req, "instruction")
    return req


def parse_anthropic(body: dict[str, Any]) -> WireRequest:
    texts = [_text_of(body.get("system"))] if body.get("system") else []
    texts += [_text_of(m.get("content")) for m in body.get("messages") or [] if isinstance(m, dict)]
    req = WireRequest("anthropic", str(body.get("model", "")), texts, temperature=body.get("temperature"))
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict)]
    if tools and not isinstance(body.get("tool_choice"), dict):
        req.mode = req.schema_name = TOOLS_SCHEMA
    elif tools:
        choice = body.get("tool_choice")
        wanted = choice.get("name") if isinstance(choice, dict) else None
        tool = next((t for t in tools if t.get("name") == wanted), tools[0])
        req.mode, req.schema_name, req.schema = "tool", tool.get("name"), tool.get("input_schema")
    else:
        _from_instruction(req, "instruction")
    return req


def estimate_tokens(text: str) -> int:
    return len(text) // 4 + 1


# --- answers -------------------------------------------------------------------------
def openai_answer(req: WireRequest, reply: Any, *, usage: bool) -> dict[str, Any]:
    """``reply``: str = text content; anything else = the JSON value (a tool call in tool mode)."""
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
    finish = "stop"
    if req.agentic and isinstance(reply, dict) and reply.get("tool_calls"):
        message["content"] = reply.get("text") or None
        message["tool_calls"] = [{"id": f"call_fake_{next(_ids)}", "type": "function",
                                  "function": {"name": c["name"], "arguments": c["arguments"] if isinstance(
                                      c.get("arguments"), str) else json.dumps(c.get("arguments") or {})}}
                                 for c in reply["tool_calls"]]
        finish, out_text = "tool_calls", json.dumps(reply)
    elif req.mode == "tool" and not isinstance(reply, str):
        arguments = json.dumps(reply)
        message["tool_calls"] = [{"id": f"call_fake_{next(_ids)}", "type": "function",
                                  "function": {"name": req.schema_name or "tool", "arguments": arguments}}]
        finish, out_text = "tool_calls", arguments
    else:
        out_text = message["content"] = reply if isinstance(reply, str) else json.dumps(reply)
    body: dict[str, Any] = {"id": f"chatcmpl-fake-{next(_ids)}", "object": "chat.completion",
                            "created": int(time.time()), "model": req.model,
                            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}]}
    if usage:
        tin, tout = sum(estimate_tokens(t) for t in req.texts), estimate_tokens(out_text)
        body["usage"] = {"prompt_tokens": tin, "completion_tokens": tout, "total_tokens": tin + tout}
    return body


def anthropic_answer(req: WireRequest, reply: Any, *, usage: bool, empty: bool = False) -> dict[str, Any]:
    if empty:
        content: list[dict[str, Any]] = []
        out_text, stop = "", "end_turn"
    elif req.agentic and isinstance(reply, dict) and reply.get("tool_calls"):
        content = [{"type": "text", "text": reply["text"]}] if reply.get("text") else []
        content += [{"type": "tool_use", "id": f"toolu_fake_{next(_ids)}", "name": c["name"],
                     "input": c.get("arguments") or {}} for c in reply["tool_calls"]]
        out_text, stop = json.dumps(reply), "tool_use"
    elif req.mode == "tool" and not isinstance(reply, str):
        content = [{"type": "tool_use", "id": f"toolu_fake_{next(_ids)}", "name": req.schema_name or "tool",
                    "input": reply}]
        out_text, stop = json.dumps(reply), "tool_use"
    else:
        out_text = reply if isinstance(reply, str) else json.dumps(reply)
        content, stop = [{"type": "text", "text": out_text}], "end_turn"
    body: dict[str, Any] = {"id": f"msg_fake_{next(_ids)}", "type": "message", "role": "assistant",
                            "model": req.model, "content": content, "stop_reason": stop, "stop_sequence": None}
    if usage:
        body["usage"] = {"input_tokens": sum(estimate_tokens(t) for t in req.texts),
                         "output_tokens": estimate_tokens(out_text)}
    return body


_ANTHROPIC_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                          404: "not_found_error", 429: "rate_limit_error", 529: "overloaded_error"}


def error_body(api: str, status: int, message: str) -> dict[str, Any]:
    if api == "anthropic":
        return {"type": "error", "error": {"type": _ANTHROPIC_ERROR_TYPES.get(status, "api_error"),
                                           "message": message}}
    return {"error": {"message": message, "type": "invalid_request_error" if status < 500 else "server_error",
                      "code": None, "param": None}}


# --- values from a JSON schema -----------------------------------------------------------
_FORMATS = {"date-time": "2024-01-01T00:00:00Z", "date": "2024-01-01", "time": "00:00:00",
            "uuid": "00000000-0000-0000-0000-000000000000", "email": "someone@example.com",
            "uri": "https://example.com/", "duration": "PT1S"}


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    while isinstance(ref, str) and ref.startswith("#/"):
        node: Any = root
        for part in ref[2:].split("/"):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        schema = node if isinstance(node, dict) else {}
        ref = schema.get("$ref")
    return schema


def minimal_value(schema: dict[str, Any] | None, root: dict[str, Any] | None = None, depth: int = 0) -> Any:
    """The smallest sensible value that validates: required fields only, type-appropriate defaults."""
    if not isinstance(schema, dict) or depth > 32:
        return {}
    root = root if root is not None else schema
    schema = _resolve(schema, root)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf", "allOf"):
        options = [o for o in schema.get(key) or [] if isinstance(o, dict)]
        if options:
            usable = [o for o in options if _resolve(o, root).get("type") != "null"] or options
            return minimal_value(usable[0], root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    props = schema.get("properties") or {}
    if kind == "object" or (kind is None and props):
        return {name: minimal_value(props.get(name, {}), root, depth + 1) for name in schema.get("required") or []}
    if kind == "array":
        return [minimal_value(schema.get("items", {}), root, depth + 1) for _ in range(schema.get("minItems", 0))]
    if kind == "string":
        if schema.get("format") in _FORMATS:
            return _FORMATS[schema["format"]]
        length = min(max(2, schema.get("minLength", 0)), schema.get("maxLength", 2**31))
        return "ok"[:length] if length <= 2 else "o" * length
    if kind in ("integer", "number"):
        if "minimum" in schema:
            low = schema["minimum"]
        elif "exclusiveMinimum" in schema:
            low = schema["exclusiveMinimum"] + 1
        else:
            low = 0
        return int(low) if kind == "integer" else float(low)
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return {}


def violating_value(schema: dict[str, Any] | None) -> Any:
    """Valid JSON that does not match ``schema``."""
    schema = schema or {}
    if schema.get("required"):
        return {}
    props = schema.get("properties") or {}
    if props:
        first = next(iter(props))
        wrong = 12345 if _resolve(props[first], schema).get("type") == "string" else "not-the-right-type"
        return {first: wrong}
    return ["schema_violation"]
