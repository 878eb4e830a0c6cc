"""Flows: what running a task of a given type means. The worker calls ``flow.run(task)``.

A flow returns a :class:`FlowResult`; the orchestrator persists it in one
transaction (completion plus follow-up tasks, a hand-off to the next stage,
or a wait for approval). Flows raise the errors of ``ai_agents.errors``.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Protocol

from ai_agents import attempt as current_lease
from ai_agents.agents.base import BaseAgent
from ai_agents.agents.ceo import CEOAgent
from ai_agents.agents.models import ProposedTask, Verdict
from ai_agents.agents.reviewer import ReviewerAgent
from ai_agents.domain import Role, Task, slugify


@dataclass
class FlowResult:
    result: dict[str, Any] = field(default_factory=dict)
    follow_ups: list[ProposedTask] = field(default_factory=list)
    next_stage: str | None = None
    awaiting_approval: str | None = None


class Flow(Protocol):
    def role_for(self, task: Task) -> Role: ...

    def run(self, task: Task) -> FlowResult: ...


class DocumentWriter(Protocol):
    """What the analysis flow needs of the workspace: write a file and commit it."""

    def __call__(self, path: str, content: str, agent: Role, message: str,
                 trailers: dict[str, str] | None = None) -> str | None: ...


class AnalysisFlow:
    """One agent does the task with self-correction and writes the result under ``docs/``."""

    def __init__(self, agents: dict[Role, BaseAgent], write_document: DocumentWriter, default_role: Role = Role.CEO):
        self.agents = agents
        self.write_document = write_document
        self.default_role = default_role

    def role_for(self, task: Task) -> Role:
        if task.assigned_agent:
            role = Role(task.assigned_agent)
            if role in self.agents:
                return role
        return self.default_role

    def run(self, task: Task) -> FlowResult:
        agent = self.agents[self.role_for(task)]
        product = agent.process_task(task)
        path = f"docs/{task.id}-{slugify(task.title)}.md"
        current_lease.check()  # fencing: a reclaimed attempt commits no document
        content = f"# {task.title}\n\n_{agent.name}, task {task.id}_\n\n{product.document.strip()}\n"
        sha = self.write_document(path, content, agent.role, f"docs: {task.title[:60]}", {"Task-Id": task.id})
        agent.record("document_written", task, path=path, commit=sha)
        return FlowResult(result={"summary": product.summary, "document": path, "commit": sha,
                                  "agent": agent.role.value}, follow_ups=product.follow_up_tasks)


class DecisionFlow:
    """Specification flow 3: the V-team judges in parallel, the CEO decides, approval becomes tasks."""

    def __init__(self, ceo: CEOAgent, reviewers: dict[Role, ReviewerAgent], v_team: Callable[[], list[Role]],
                 executor: Executor):
        self.ceo = ceo
        self.reviewers = reviewers
        self.v_team = v_team
        self.executor = executor

    def role_for(self, task: Task) -> Role:
        return Role.CEO

    def run(self, task: Task) -> FlowResult:
        team = [r for r in self.v_team() if r in self.reviewers]
        futures = {role: self.executor.submit(self.reviewers[role].verdict, task) for role in team}
        # result() re-raises a reviewer's error here, in the worker, where it is handled.
        verdicts: dict[str, Verdict] = {role.value: fut.result()[1] for role, fut in futures.items()}
        decision = self.ceo.decide(task, verdicts)
        return FlowResult(
            result={"approve": decision.approve, "reasoning": decision.reasoning,
                    "verdicts": {r: v.model_dump() for r, v in verdicts.items()}},
            follow_ups=decision.tasks if decision.approve else [],
        )
