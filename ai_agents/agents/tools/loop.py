"""The bounded tool loop: the model calls tools until it calls ``finish``, within limits.

Before every call the limits of ``agents.tools`` are checked against ``llm_calls`` (answered
calls, tokens and dollars of this stage, i.e. this agent on this task, and of the whole
task); reaching one raises :class:`AgentLimitReached` with the reason. The prompt of every
turn is fitted to ``context_tokens``: the task and the newest turns stay verbatim, older tool
results are replaced by a one-line note, and the oldest turns are dropped if that is not enough.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from ai_agents.agents.tools.registry import FINISH, FinishArgs, ToolRegistry
from ai_agents.agents.tools.repo_map import estimate_tokens
from ai_agents.config.live import LiveConfig
from ai_agents.domain import Role
from ai_agents.errors import AgentLimitReached, AttemptTurnsUsed, TaskFailedError
from ai_agents.llm.tools import ToolReply, ToolSpec, ToolTurn
from ai_agents.memory.store import MemoryStore

log = structlog.get_logger("ai_agents.agents.tools")

KEEP_NEWEST_GROUPS = 2
DROPPED_NOTE = "\n\n(Note:"
MAX_SILENT_REPLIES = 2
NUDGE = ("Answer with tool calls: look with find_files, search, read_file and repo_map, change code with "
         "edit_file or create_file, check with run_tests, and call finish when the work is complete.")


class ToolModel(Protocol):
    """What the loop needs of the LLM layer (``ai_agents.llm.LLMClient`` is one)."""

    def run_tools(self, turns: Sequence[ToolTurn], tools: Sequence[ToolSpec], *, system: str | None = None,
                  max_tokens: int | None = None, agent: str | None = None,
                  task_id: str | None = None) -> ToolReply: ...


@dataclass
class LoopOutcome:
    """How a loop ended with ``finish``: the summary, the changed files and what it took."""

    finish: FinishArgs
    changed: dict[str, str]
    turns: int = 0
    tool_calls: int = 0
    largest_prompt_tokens: int = 0
    total_prompt_tokens: int = 0
    refused: list[str] = field(default_factory=list)


class LimitGuard:
    """``agents.tools.per_stage`` / ``per_task`` against this task's rows in ``llm_calls``."""

    def __init__(self, live: LiveConfig, memory: MemoryStore):
        self.live = live
        self.memory = memory

    def check(self, task_id: str, role: Role) -> None:
        cfg = self.live.current.agents.tools
        for scope, limits, agent in (("stage", cfg.per_stage, role.value), ("task", cfg.per_task, None)):
            used = self.memory.task_usage(task_id, agent)
            reached = []
            if limits.max_turns is not None and used["turns"] >= limits.max_turns:
                reached.append(f"{used['turns']} model calls of agents.tools.per_{scope}.max_turns {limits.max_turns}")
            if limits.max_tokens is not None and used["tokens"] >= limits.max_tokens:
                reached.append(f"{used['tokens']} tokens of agents.tools.per_{scope}.max_tokens {limits.max_tokens}")
            if limits.max_usd is not None and used["cost_usd"] >= limits.max_usd:
                reached.append(f"${used['cost_usd']:.4f} of agents.tools.per_{scope}.max_usd ${limits.max_usd:g}")
            if reached:
                who = f"the {role.value} stage" if scope == "stage" else "the task"
                raise AgentLimitReached(f"{who} reached its limit ({'; '.join(reached)}); the attempt stops here")


def turn_tokens(turn: ToolTurn) -> int:
    calls = sum(estimate_tokens(c.name + json.dumps(c.arguments)) for c in turn.tool_calls)
    return estimate_tokens(turn.text) + calls + 4


def prompt_tokens(system: str, specs: Sequence[ToolSpec], turns: Sequence[ToolTurn]) -> int:
    """The estimate the budget is held to: system prompt, tool definitions and every turn."""
    fixed = estimate_tokens(system) + sum(estimate_tokens(json.dumps(s.model_dump())) for s in specs)
    return fixed + sum(turn_tokens(t) for t in turns)


def _groups(turns: Sequence[ToolTurn]) -> list[list[ToolTurn]]:
    """The turns after the first, cut before each assistant turn (a call stays with its results)."""
    groups: list[list[ToolTurn]] = []
    for t in turns[1:]:
        if t.role == "assistant" or not groups:
            groups.append([t])
        else:
            groups[-1].append(t)
    return groups


def _flat(first: ToolTurn, groups: list[list[ToolTurn]]) -> list[ToolTurn]:
    return [first, *(t for g in groups for t in g)]


def _shrunk(turn: ToolTurn) -> ToolTurn:
    if turn.role != "tool" or turn.text.startswith("[older result"):
        return turn
    lines = turn.text.count("\n") + 1
    head = turn.text.splitlines()[0][:120] if turn.text else ""
    note = f"[older result of {turn.tool_name}, {lines} lines, dropped to fit the context budget; first line: {head}]"
    return turn.model_copy(update={"text": note})


def fit_context(system: str, specs: Sequence[ToolSpec], turns: Sequence[ToolTurn], budget: int,
                changed: Sequence[str] = ()) -> list[ToolTurn]:
    """``turns`` cut to ``budget`` tokens: first old results are shrunk, then old turns dropped,
    last the newest results are cut. The task (first turn) and the newest turns stay."""
    if prompt_tokens(system, specs, turns) <= budget:
        return list(turns)
    first, groups = turns[0], _groups(turns)
    # 1. Replace old tool results by a one-line note, oldest first.
    for group in groups[:-KEEP_NEWEST_GROUPS]:
        group[:] = [_shrunk(t) for t in group]
        if prompt_tokens(system, specs, _flat(first, groups)) <= budget:
            return _flat(first, groups)
    # 2. Drop the oldest turns whole; tell the model what it has changed so far.
    dropped = 0
    while len(groups) > 1 and prompt_tokens(system, specs, _flat(first, groups)) > budget:
        groups.pop(0)
        dropped += 1
    if dropped:
        text, _, _ = first.text.partition(DROPPED_NOTE)
        note = (f"{DROPPED_NOTE} {dropped} earlier turns were dropped to fit the context budget. Files you changed so "
                f"far (kept): {', '.join(changed) or 'none'}. Read them again if you need their content.)")
        first = first.model_copy(update={"text": text + note})
    kept = _flat(first, groups)
    # 3. Still too big: cut the newest results' text to share what is left.
    over = prompt_tokens(system, specs, kept) - budget
    if over > 0:
        results = [i for i, t in enumerate(kept) if t.role == "tool"]
        for i in results:
            t = kept[i]
            share = max(0, estimate_tokens(t.text) - (over // len(results) + 1))
            kept[i] = t.model_copy(update={"text": t.text[: share * 4] + "\n(cut to fit the context budget)"})
    return kept


class ToolLoop:
    """One agent's attempt: brief in, :class:`LoopOutcome` out (or AgentLimitReached / TaskFailedError)."""

    def __init__(self, llm: ToolModel, guard: LimitGuard, *, role: Role, system: str, registry: ToolRegistry,
                 task_id: str, finish_check: Callable[[ToolRegistry], str | None] | None = None):
        self.llm = llm
        self.guard = guard
        self.role = role
        self.system = system
        self.registry = registry
        self.task_id = task_id
        self.finish_check = finish_check

    def run(self, brief: str) -> LoopOutcome:
        cfg = self.guard.live.current.agents.tools
        specs = self.registry.specs
        turns = [ToolTurn(role="user", text=brief)]
        outcome = LoopOutcome(finish=FinishArgs(summary="-"), changed={})
        silent = 0
        for _ in range(cfg.max_turns_per_attempt):
            self.guard.check(self.task_id, self.role)
            sent = fit_context(self.system, specs, turns, cfg.context_tokens, list(self.registry.view.changed))
            size = prompt_tokens(self.system, specs, sent)
            outcome.largest_prompt_tokens = max(outcome.largest_prompt_tokens, size)
            outcome.total_prompt_tokens += size
            reply = self.llm.run_tools(sent, specs, system=self.system, agent=self.role.value, task_id=self.task_id)
            outcome.turns += 1
            turns = [*sent, ToolTurn(role="assistant", text=reply.text, tool_calls=reply.tool_calls)]
            if not reply.tool_calls:
                silent += 1
                if silent > MAX_SILENT_REPLIES:
                    raise TaskFailedError(f"the {self.role.value} stopped calling tools without calling finish: "
                                          f"{reply.text[:300]!r}")
                turns.append(ToolTurn(role="user", text=NUDGE))
                continue
            silent = 0
            finished: FinishArgs | None = None
            for call in reply.tool_calls:
                outcome.tool_calls += 1
                if call.arguments_error:
                    text, error, args = f"{call.name}: {call.arguments_error}", True, None
                else:
                    text, error, args = self.registry.call(call.name, call.arguments)
                if call.name == FINISH and not error and isinstance(args, FinishArgs):
                    problem = self.finish_check(self.registry) if self.finish_check else None
                    if problem:
                        text, error = problem, True
                    else:
                        finished = args
                if error:
                    outcome.refused.append(text[:300])
                log.info("tool_call", agent=self.role.value, task_id=self.task_id, tool=call.name, error=error,
                         result=text[:200])
                turns.append(ToolTurn(role="tool", call_id=call.id, tool_name=call.name, text=text, is_error=error))
            if finished is not None:
                outcome.finish = finished
                outcome.changed = dict(self.registry.view.changed)
                return outcome
        raise AttemptTurnsUsed(f"the {self.role.value} used all {cfg.max_turns_per_attempt} turns of one attempt "
                                "(agents.tools.max_turns_per_attempt) without calling finish")
