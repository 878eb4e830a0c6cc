"""``scripted``: a deterministic model with no HTTP at all, answering from a script file.

For the zero-setup demo and the soak benchmark. See :mod:`ai_agents.llm.script` for the format.
"""

from __future__ import annotations

import itertools
import json

from ai_agents.config.models import ProviderConfig
from ai_agents.errors import ConfigError
from ai_agents.llm.base import ProviderReply, ProviderRequest
from ai_agents.llm.script import Script
from ai_agents.llm.structured import schema_name
from ai_agents.llm.tools import TOOLS_SCHEMA, scripted_reply, turn_texts


def estimate_tokens(text: str) -> int:
    """About four characters per token: enough for budgets and usage rows to move realistically."""
    return max(1, (len(text) + 3) // 4) if text else 0


class ScriptedProvider:
    """Answers from a :class:`Script`; honours the ``agent`` condition of rules."""

    def __init__(self, config: ProviderConfig, *, config_path: str = "llm", script: Script | None = None):
        self.kind = config.provider
        self.config = config
        self.config_path = config_path
        if script is None:
            if config.script_path is None:
                raise ConfigError(f"{config_path}.script_path is required for provider 'scripted'")
            script = Script.from_file(config.script_path)
        self.script = script
        self._ids = itertools.count(1)

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.config.model}"

    def missing_key(self) -> str | None:
        return None

    def complete(self, request: ProviderRequest) -> ProviderReply:
        if request.tools:
            return self._tool_turn(request)
        texts = ([request.system] if request.system else []) + [m.get("content", "") for m in request.messages]
        schema = schema_name(request.schema) if request.schema is not None else None
        reply = self.script.answer(schema=schema, texts=texts, agent=request.agent)
        text = reply if isinstance(reply, str) else json.dumps(reply)
        return ProviderReply(text=text, tokens_in=sum(estimate_tokens(t) for t in texts),
                             tokens_out=estimate_tokens(text), model=request.model)

    def _tool_turn(self, request: ProviderRequest) -> ProviderReply:
        texts = ([request.system] if request.system else []) + turn_texts(request.turns)
        reply = self.script.answer(schema=TOOLS_SCHEMA, texts=texts, agent=request.agent)
        text, calls = scripted_reply(reply, self._ids)
        out = text + "".join(json.dumps(c.arguments) for c in calls)
        return ProviderReply(text=text, tokens_in=sum(estimate_tokens(t) for t in texts),
                             tokens_out=estimate_tokens(out), model=request.model, tool_calls=tuple(calls))

    def close(self) -> None:
        """Nothing to release."""
