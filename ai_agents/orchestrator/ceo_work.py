"""The CEO's bookkeeping as queued work: idle generation and escalation decisions.

The main loop only notices that the company is idle, or that a task is escalated,
and queues a ``generation`` or ``escalation`` task for the CEO's workers; the model
is asked here, in a worker, under a lease like any other task. What a decision
changes is checked against the lease first and guarded by the target's status.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from ai_agents import attempt as current_lease
from ai_agents.agents.base import proposed_to_kwargs
from ai_agents.agents.ceo import CEOAgent
from ai_agents.agents.models import EscalationDecision
from ai_agents.config.live import LiveConfig
from ai_agents.domain import Role, Task, TaskStatus, normalize_text
from ai_agents.errors import AgentsError, BudgetExceeded, LeaseLost
from ai_agents.memory.store import MemoryStore
from ai_agents.memory.tasks import TaskStore, fingerprint
from ai_agents.orchestrator.flows import FlowResult
from ai_agents.orchestrator.pacing import GenerationPacer
from ai_agents.orchestrator.ports import Alerts

log = structlog.get_logger("ai_agents.orchestrator")


class GenerationFlow:
    """The CEO proposes new work; accepted tasks become children of the generation task."""

    def __init__(self, ceo: CEOAgent, tasks: TaskStore, memory: MemoryStore, live: LiveConfig,
                 pacer: GenerationPacer, alerts: Alerts, workspace_summary: Callable[[], str]):
        self.ceo = ceo
        self.tasks = tasks
        self.memory = memory
        self.live = live
        self.pacer = pacer
        self.alerts = alerts
        self.workspace_summary = workspace_summary

    def role_for(self, task: Task) -> Role:
        return Role.CEO

    def run(self, task: Task) -> FlowResult:
        cfg = self.live.current.orchestrator
        try:
            accepted, skipped, goals_met = self.ceo.generate_tasks(
                existing_fingerprints=self.tasks.open_fingerprints(),
                existing_descriptions={normalize_text(d) for d in self.tasks.open_descriptions()},
                workspace_summary=self.workspace_summary(), limit=cfg.max_new_tasks, task=task)
        except (LeaseLost, BudgetExceeded):
            raise
        except AgentsError as exc:
            # A failing provider is not asked again at the next idle cycle: back off as after an empty one.
            self.pacer.generated(0)
            log.warning("task_generation_failed", error=str(exc))
            self.alerts.alert("critical_error" if "Auth" in type(exc).__name__ else "api_limit",
                              f"the CEO could not generate tasks: {exc}")
            raise
        current_lease.check()
        self.pacer.generated(len(accepted), goals_met)
        self._watch_repeats(skipped, cfg.loop_threshold)
        return FlowResult(result={"created": [p.title for p in accepted], "skipped": len(skipped),
                                  "goals_met": goals_met}, follow_ups=accepted)

    def _watch_repeats(self, skipped: list[dict[str, str]], threshold: int) -> None:
        """The CEO proposing the same task again and again is a loop: alert once per task."""
        counts: dict[str, int] = self.memory.recall("ceo", "duplicate_proposals", {}) or {}
        for item in skipped:
            fp = fingerprint(item["title"])
            counts[fp] = counts.get(fp, 0) + 1
            if counts[fp] == threshold:
                self.alerts.alert("task_loop", f"the CEO proposed '{item['title']}' {threshold} times",
                                  title=item["title"])
        self.memory.remember("ceo", "duplicate_proposals", counts)


class EscalationFlow:
    """The CEO decides on one escalated task (``payload.target``): retry differently, split, or drop."""

    def __init__(self, ceo: CEOAgent, tasks: TaskStore, live: LiveConfig):
        self.ceo = ceo
        self.tasks = tasks
        self.live = live

    def role_for(self, task: Task) -> Role:
        return Role.CEO

    def run(self, task: Task) -> FlowResult:
        target = self.tasks.get(str(task.payload.get("target", "")))
        if target is None or target.status != TaskStatus.ESCALATED:
            return FlowResult(result={"target": task.payload.get("target"), "action": "none",
                                      "reason": "no longer escalated"})
        with structlog.contextvars.bound_contextvars(target_id=target.id):
            decision = self.ceo.handle_escalation(target)
            current_lease.check()  # the decision changes another task: only while this attempt holds its lease
            applied = self._apply(target, decision)
        return FlowResult(result={"target": target.id, "action": decision.action, "applied": applied})

    def _apply(self, task: Task, decision: EscalationDecision) -> bool:
        """The decision's change, guarded by the target's status, and its decision row: one transaction each."""
        tasks = self.tasks
        marker = {"escalations": task.payload.get("escalations", 0) + 1}
        record = self.ceo.escalation_record(task, decision)
        if decision.action == "retry":
            return tasks.retry_escalated(task.id, decision.new_description, marker, record)
        if decision.action == "split" and decision.subtasks:
            subtasks = [proposed_to_kwargs(sub)
                        for sub in decision.subtasks[: self.live.current.orchestrator.max_new_tasks or 1]]
            return tasks.split_escalated(task.id, subtasks, marker, record) is not None
        # Keep why it failed: the CEO's reasoning alone does not tell an operator what broke.
        return tasks.drop_escalated(task.id, f"dropped by the CEO: {decision.reasoning[:1000]}; it had failed with: "
                                             f"{task.error}"[:4000], record)
