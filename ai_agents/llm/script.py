"""Scripted answers: the rule engine behind the ``scripted`` provider and the fake LLM server.

A script file (YAML or JSON) holds a top-level ``rules:`` list::

    rules:
      - when: {schema: TaskPlan, agent: ceo, contains: "mission"}
        times: 1                     # optional: how many answers this rule may give
        reply: {title: "Add slugify", steps: ["write test", "write code"]}
      - when: {contains: "review"}   # no schema (or schema: text): plain generate only
        replies: ["first draft", "second draft"]   # one after another, then the last repeats
      - when: {schema: "*"}          # any request, text or structured
        reply: {ok: true}

``when`` keys (all optional, all must hold): ``schema`` (the pydantic class name asked
for; absent or "text" means plain text; "*" means anything; a list means any of them),
``agent`` (a role value or list; only checked when the caller knows the agent, which the
fake server does not), ``contains`` / ``not_contains`` (a string or a list of strings that
must all / must none appear in the system prompt or any message), ``last_contains`` (must
all appear in the newest message: in a tool loop, the latest tool result). Schema ``tools``
answers a tool request: ``{text: ..., tool_calls: [{name: ..., arguments: {...}}]}``. The first rule in file
order that matches and has uses left answers. A mapping or list reply is the JSON object
for structured output; a string reply is text.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ai_agents.errors import ConfigError, LLMRequestError

ANY = "*"
TEXT = "text"


class ScriptNoMatchError(LLMRequestError):
    """No rule of the script answers the request."""


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError(f"{where} must be a string or a list of strings")


@dataclass
class Rule:
    """One entry of ``rules:``. ``used`` counts answers given so far."""

    replies: list[Any]
    schemas: tuple[str, ...] = (TEXT,)
    agents: tuple[str, ...] = ()
    contains: tuple[str, ...] = ()
    not_contains: tuple[str, ...] = ()
    last_contains: tuple[str, ...] = ()
    times: int | None = None
    used: int = field(default=0, compare=False)

    @classmethod
    def parse(cls, raw: Any, index: int) -> Rule:
        where = f"rules[{index}]"
        if not isinstance(raw, dict):
            raise ValueError(f"{where} must be a mapping with 'when' and 'reply' or 'replies'")
        unknown = set(raw) - {"when", "times", "reply", "replies"}
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}")
        when = raw.get("when") or {}
        if not isinstance(when, dict) or set(when) - {"schema", "agent", "contains", "not_contains", "last_contains"}:
            raise ValueError(f"{where}.when may only hold schema, agent, contains, not_contains, last_contains")
        if ("reply" in raw) == ("replies" in raw):
            raise ValueError(f"{where} needs exactly one of 'reply' or 'replies'")
        replies = [raw["reply"]] if "reply" in raw else raw["replies"]
        if not isinstance(replies, list) or not replies or any(r is None for r in replies):
            raise ValueError(f"{where}: 'replies' must be a non-empty list and no reply may be empty")
        times = raw.get("times")
        if times is not None and (not isinstance(times, int) or isinstance(times, bool) or times < 1):
            raise ValueError(f"{where}.times must be a positive integer")
        return cls(replies=replies, schemas=_strings(when.get("schema"), f"{where}.when.schema") or (TEXT,),
                   agents=_strings(when.get("agent"), f"{where}.when.agent"),
                   contains=_strings(when.get("contains"), f"{where}.when.contains"),
                   not_contains=_strings(when.get("not_contains"), f"{where}.when.not_contains"),
                   last_contains=_strings(when.get("last_contains"), f"{where}.when.last_contains"), times=times)

    def matches(self, schema: str | None, texts: Sequence[str], agent: str | None, agent_known: bool) -> bool:
        if self.times is not None and self.used >= self.times:
            return False
        if ANY not in self.schemas and (schema or TEXT) not in self.schemas:
            return False
        if self.agents and agent_known and agent not in self.agents:
            return False
        if any(not any(s in t for t in texts) for s in self.contains):
            return False
        if self.last_contains and (not texts or any(s not in texts[-1] for s in self.last_contains)):
            return False
        return not any(s in t for s in self.not_contains for t in texts)

    def take(self) -> Any:
        reply = self.replies[min(self.used, len(self.replies) - 1)]
        self.used += 1
        return reply


class Script:
    """An ordered list of rules, safe to share between threads."""

    def __init__(self, rules: Sequence[Rule], source: str = "<inline script>"):
        self.rules = list(rules)
        self.source = source
        self._lock = threading.Lock()

    @classmethod
    def from_data(cls, data: Any, source: str = "<inline script>") -> Script:
        """Build from the parsed file content; raise :class:`ConfigError` naming the problem."""
        if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
            raise ConfigError(f"script {source}: the top level must be a mapping with a 'rules:' list")
        try:
            return cls([Rule.parse(raw, i) for i, raw in enumerate(data["rules"])], source)
        except ValueError as e:
            raise ConfigError(f"script {source}: {e}") from e

    @classmethod
    def from_file(cls, path: Path | str) -> Script:
        """Read a YAML or JSON script file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"script {path} cannot be read: {e}") from e
        try:
            data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as e:
            raise ConfigError(f"script {path} is not valid {path.suffix.lstrip('.').upper() or 'YAML'}: {e}") from e
        return cls.from_data(data, str(path))

    def match(self, *, schema: str | None, texts: Sequence[str], agent: str | None = None,
              agent_known: bool = True) -> tuple[bool, Any]:
        """(True, reply) from the first matching rule with uses left, consuming one use; else (False, None)."""
        with self._lock:
            for rule in self.rules:
                if rule.matches(schema, texts, agent, agent_known):
                    return True, rule.take()
        return False, None

    def answer(self, *, schema: str | None, texts: Sequence[str], agent: str | None = None) -> Any:
        """The reply for a request, or :class:`ScriptNoMatchError` when no rule matches."""
        found, reply = self.match(schema=schema, texts=texts, agent=agent)
        if not found:
            raise ScriptNoMatchError(f"no scripted rule matched in {self.source} "
                                  f"(schema={schema or TEXT}, agent={agent or '-'}): add a rule for it")
        return reply

    def reset(self) -> None:
        """Give every rule its uses back."""
        with self._lock:
            for rule in self.rules:
                rule.used = 0
