"""Structured output helpers: schema naming, the JSON instruction, parsing and validation.

The instruction text used by the ``json_object`` and ``instruction`` modes has a fixed
marker line so that tools reading a prompt (the fake server in tests, a log reader)
can tell which schema was asked for: :func:`schema_from_instruction` reads it back.
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)

_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")
_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*[ \t]*\n?(.*?)\n?[ \t]*```\s*$", re.DOTALL)
INSTRUCTION_MARKER = "JSON output schema"
_INSTRUCTION = re.compile(
    re.escape(INSTRUCTION_MARKER) + r" '([A-Za-z0-9_-]+)':\n(\{.*\})\n" + re.escape("(end of schema)"), re.DOTALL)


def schema_name(schema: type[BaseModel]) -> str:
    """The pydantic class name, made safe for OpenAI's ``json_schema.name`` and tool names."""
    return _NAME_CHARS.sub("_", schema.__name__)[:64] or "Output"


def schema_json(schema: type[BaseModel]) -> dict[str, Any]:
    return schema.model_json_schema()


def json_instruction(name: str, schema: dict[str, Any]) -> str:
    """System-prompt text asking for one JSON object that matches ``schema``."""
    return (
        "Answer with one JSON object only: no prose, no code fences.\n"
        f"{INSTRUCTION_MARKER} '{name}':\n{json.dumps(schema, sort_keys=True)}\n(end of schema)"
    )


def schema_from_instruction(text: str) -> tuple[str, dict[str, Any]] | None:
    """Read back (name, schema) from text holding :func:`json_instruction`'s output."""
    m = _INSTRUCTION.search(text)
    if not m:
        return None
    try:
        return m.group(1), json.loads(m.group(2))
    except json.JSONDecodeError:
        return None


def with_instruction(system: str | None, name: str, schema: dict[str, Any]) -> str:
    return f"{system}\n\n{json_instruction(name, schema)}" if system else json_instruction(name, schema)


def strip_fences(text: str) -> str:
    """Remove one surrounding ```json ... ``` fence, which models add despite being told not to."""
    m = _FENCE.match(text)
    return m.group(1).strip() if m else text.strip()


def parse_answer(text: str, schema: type[M]) -> tuple[M | None, str]:
    """Parse and validate. Returns (instance, "") or (None, a description of what is wrong)."""
    body = strip_fences(text)
    if not body:
        return None, "the answer was empty; expected one JSON object"
    try:
        data = json.loads(body)
    except json.JSONDecodeError as e:
        return None, f"the answer is not valid JSON ({e.msg} at line {e.lineno} column {e.colno})"
    try:
        return schema.model_validate(data), ""
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in e.errors()[:20])
        return None, f"the JSON does not match schema {schema_name(schema)}: {problems}"


def repair_message(problem: str, name: str, schema: dict[str, Any]) -> str:
    """The user message of the repair round: what was wrong and what is wanted instead."""
    return (
        f"Your previous answer could not be used: {problem}.\n"
        "Reply again with only the corrected JSON object, no prose and no code fences.\n"
        f"{INSTRUCTION_MARKER} '{name}':\n{json.dumps(schema, sort_keys=True)}\n(end of schema)"
    )
