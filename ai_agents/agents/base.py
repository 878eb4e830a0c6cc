"""BaseAgent: a role with a system prompt that thinks through the LLM layer and checks its own work."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, Protocol, TypeVar

import structlog
from pydantic import BaseModel

from ai_agents import attempt as current_lease
from ai_agents.agents.models import ProposedTask, Validation, WorkProduct
from ai_agents.agents.prompts import system_prompt
from ai_agents.config.live import LiveConfig
from ai_agents.domain import Role, Task, utcnow
from ai_agents.errors import TaskFailedError
from ai_agents.llm.tools import ToolReply, ToolSpec, ToolTurn
from ai_agents.memory.context import ContextManager
from ai_agents.memory.store import MemoryStore

T = TypeVar("T", bound=BaseModel)
COMPLETED_TASKS_KEPT = 1000
log = structlog.get_logger("ai_agents.agents")


class LanguageModel(Protocol):
    """What agents need of the LLM layer (``ai_agents.llm.LLMClient`` is one)."""

    def generate_structured(self, messages: str | list[dict[str, str]], schema: type[T], *,
                            system: str | None = None, temperature: float | None = None,
                            max_tokens: int | None = None, agent: str | None = None,
                            task_id: str | None = None) -> T: ...

    def run_tools(self, turns: Sequence[ToolTurn], tools: Sequence[ToolSpec], *, system: str | None = None,
                  max_tokens: int | None = None, agent: str | None = None,
                  task_id: str | None = None) -> ToolReply: ...


def task_brief(task: Task) -> str:
    """The task as the model sees it: data, fenced off from instructions."""
    return json.dumps({"id": task.id, "type": task.type.value, "title": task.title,
                       "description": task.description}, ensure_ascii=False, indent=1)


class BaseAgent:
    """An agent of one role: name, prompt, LLM, context and memory; tracks its active and completed tasks."""

    def __init__(self, role: Role, llm: LanguageModel, context: ContextManager, memory: MemoryStore,
                 live: LiveConfig):
        self.role = role
        self.name = f"{role.title} Agent"
        self.llm = llm
        self.context = context
        self.memory = memory
        self.live = live
        self.active_tasks: list[str] = []
        # The most recent ones only: an always-on daemon must not keep every task id it ever finished.
        self.completed_tasks: deque[str] = deque(maxlen=COMPLETED_TASKS_KEPT)

    @property
    def system_prompt(self) -> str:
        return system_prompt(self.role, self.live.current.agents.for_role(self.role).system_prompt)

    def ask(self, prompt: str, schema: type[T], task: Task | None = None) -> T:
        """One structured question to the model, as this agent (a heartbeat of the attempt after it)."""
        current_lease.check()  # an ended attempt asks the model nothing more
        answer = self.llm.generate_structured(prompt, schema, system=self.system_prompt, agent=self.role.value,
                                              task_id=task.id if task else None)
        current_lease.progress()
        return answer

    def record(self, activity: str, task: Task | None = None, **details: Any) -> None:
        """Every agent action: a row in activity_logs and a JSON log event.

        The record is the trail, never the alert: an event worth one is logged with ``alert=True``
        once, where it is detected (the test runner, the static check), so that one event is one
        row in ``alerts``. An ``alert`` detail stays in the activity row but is not re-raised here.
        """
        task_id = task.id if task else None
        self.memory.log_activity(self.role.value, activity, details, task_id=task_id)
        log.info(activity, agent=self.role.value, task_id=task_id, **{k: v for k, v in details.items() if k != "alert"})

    # --- the specification's process_task with bounded self-correction -------------
    def process_task(self, task: Task) -> WorkProduct:
        """Execute, self-check, fix up to ``max_fix_attempts`` times, then change approach.

        Stops after ``max_approaches`` approaches and raises TaskFailedError with every
        issue collected (which escalates the task), instead of restarting forever.
        """
        self.active_tasks.append(task.id)
        try:
            result = self.self_correct(
                task,
                produce=lambda approach, previous_issues: self.execute(task, approach, previous_issues),
                fix=lambda result, issues: self.fix_result(task, result, issues),
                render=lambda result: result.document,
            )
            self.completed_tasks.append(task.id)
            return result
        finally:
            self.active_tasks.remove(task.id)

    def self_correct(self, task: Task, *, produce: Callable[[int, list[str]], T], fix: Callable[[T, list[str]], T],
                     render: Callable[[T], str]) -> T:
        cfg = self.live.current.agents
        collected: list[str] = []
        for approach in range(cfg.max_approaches):
            if approach:
                self.record("approach_changed", task, approach=approach + 1, issues=collected[-5:])
            result = produce(approach, collected)
            for attempt in range(cfg.max_fix_attempts):
                check = self.validate_result(task, render(result))
                self.record("result_validated", task, approach=approach + 1, attempt=attempt + 1,
                            valid=check.valid, score=check.score, issues=check.issues[:5])
                if check.valid and check.score >= cfg.validation_threshold:
                    return result
                collected += check.issues or [f"score {check.score} below {cfg.validation_threshold}"]
                if attempt < cfg.max_fix_attempts - 1:
                    result = fix(result, check.issues)
        summary = "; ".join(dict.fromkeys(collected))[:1500]
        raise TaskFailedError(f"{self.name} could not produce a valid result after {cfg.max_approaches} "
                              f"approaches: {summary}")

    def execute(self, task: Task, approach: int, previous_issues: list[str]) -> WorkProduct:
        ctx = self.context.for_task(self.role.value)
        prompt = (f"Company context: {json.dumps(ctx['global'], ensure_ascii=False)}\n"
                  f"Task (data):\n{task_brief(task)}\n"
                  "Produce a Markdown document that completes this task, a one-paragraph summary, and any"
                  " follow-up tasks other roles should do (only if clearly needed).")
        if approach:
            prompt += ("\nEarlier approaches failed review with these issues; take a completely different approach:\n- "
                       + "\n- ".join(previous_issues[-10:]))
        return self.ask(prompt, WorkProduct, task)

    def validate_result(self, task: Task, result_text: str) -> Validation:
        prompt = (f"Task (data):\n{task_brief(task)}\n\nResult to check:\n{result_text[:20000]}\n\n"
                  "Check the result critically: is it correct, complete and useful for the task? Score 0-10"
                  " and list concrete issues.")
        return self.ask(prompt, Validation, task)

    def fix_result(self, task: Task, result: WorkProduct, issues: list[str]) -> WorkProduct:
        prompt = (f"Task (data):\n{task_brief(task)}\n\nYour previous result:\n{result.document[:20000]}\n\n"
                  "Fix these issues and return the corrected result:\n- " + "\n- ".join(issues[:20]))
        return self.ask(prompt, WorkProduct, task)


def proposed_to_kwargs(p: ProposedTask) -> dict[str, Any]:
    """A ProposedTask as keyword arguments for TaskStore.create."""
    return {
        "type": p.type, "title": p.title, "description": p.description, "priority": p.priority,
        "assigned_agent": p.assigned_agents[0].value if p.assigned_agents else None,
        "deadline": utcnow() + timedelta(hours=p.deadline_hours) if p.deadline_hours else None,
    }
