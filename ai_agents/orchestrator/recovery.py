"""The main loop's steps besides supervision: stuck tasks, escalations, idle generation, housekeeping."""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from ai_agents.agents.base import proposed_to_kwargs
from ai_agents.agents.models import EscalationDecision
from ai_agents.domain import Task, TaskStatus, normalize_text
from ai_agents.errors import AgentsError, BudgetExceeded
from ai_agents.memory.tasks import fingerprint

if TYPE_CHECKING:
    from ai_agents.orchestrator.orchestrator import TaskOrchestrator

log = structlog.get_logger("ai_agents.orchestrator")

BUSY = (TaskStatus.QUEUED, TaskStatus.IN_PROGRESS, TaskStatus.AWAITING_APPROVAL)


class Recovery:
    def __init__(self, orchestrator: TaskOrchestrator):
        self.orch = orchestrator

    def reclaim_stuck(self) -> None:
        """In-progress tasks past task_timeout: requeue (or escalate); a hung worker is replaced."""
        cfg = self.orch.live.current.orchestrator
        requeued, escalated = self.orch.tasks.expired_leases(cfg.max_task_attempts)
        for task_id in requeued + escalated:
            worker = self.orch.supervisor.worker_running(task_id)
            if worker is not None:
                self.orch.supervisor.replace(worker, reason=f"task {task_id} exceeded task_timeout")
            log.warning("task_stuck", task_id=task_id, action="requeued" if task_id in requeued else "escalated",
                        timeout_seconds=cfg.task_timeout)
        if requeued:
            self.orch.dispatch()

    def expire_approvals(self) -> None:
        expired = self.orch.tasks.expire_approvals(self.orch.live.current.approvals.timeout_seconds)
        for task_id in expired:
            log.warning("approval_expired", task_id=task_id, decision="rejected")
        if expired:
            self.orch.dispatch()

    def handle_escalations(self) -> None:
        """The CEO decides on each escalated task once: retry differently, split, or drop.

        A task escalated again after that is a loop: failed, with an alert, never a third round.
        """
        for task in self.orch.tasks.list(TaskStatus.ESCALATED):
            with structlog.contextvars.bound_contextvars(task_id=task.id, agent="ceo"):
                if task.payload.get("escalations", 0) >= 1:
                    error = f"escalated again after the CEO's decision; last error: {task.error}"
                    self.orch.tasks.transition(task.id, TaskStatus.FAILED, expected=TaskStatus.ESCALATED, error=error)
                    self.orch.alerts.alert("task_loop", f"task {task.id} keeps failing; given up", task_id=task.id,
                                           title=task.title)
                    continue
                try:
                    decision = self.orch.ceo.handle_escalation(task)
                except BudgetExceeded:
                    return
                except AgentsError as exc:
                    log.warning("escalation_undecided", error=str(exc))
                    continue
                self._apply(task, decision)

    def _apply(self, task: Task, decision: EscalationDecision) -> None:
        tasks = self.orch.tasks
        marker = {"escalations": task.payload.get("escalations", 0) + 1}
        if decision.action == "retry":
            tasks.retry_escalated(task.id, decision.new_description, marker)
            self.orch.dispatch()
        elif decision.action == "split" and decision.subtasks:
            tasks.update_payload(task.id, marker)
            for sub in decision.subtasks[: self.orch.live.current.orchestrator.max_new_tasks or 1]:
                child = tasks.create(**proposed_to_kwargs(sub), parent_id=task.id)
                self.orch.enqueue(child)
            tasks.transition(task.id, TaskStatus.CANCELLED, expected=TaskStatus.ESCALATED,
                             result={"split_into": [s.title for s in decision.subtasks]})
        else:
            # Keep why it failed: the CEO's reasoning alone does not tell an operator what broke.
            tasks.transition(task.id, TaskStatus.FAILED, expected=TaskStatus.ESCALATED,
                             error=f"dropped by the CEO: {decision.reasoning[:1000]}; it had failed with: "
                                   f"{task.error}"[:4000])

    def generate_if_idle(self) -> None:
        """When nothing is queued, running or waiting, the CEO generates new tasks."""
        orch = self.orch
        cfg = orch.live.current.orchestrator
        counts = orch.tasks.counts()
        if not cfg.generate_when_idle or any(counts.get(s.value, 0) for s in BUSY) or counts.get("escalated", 0):
            return
        try:
            accepted, skipped = orch.ceo.generate_tasks(
                existing_fingerprints=orch.tasks.open_fingerprints(),
                existing_descriptions={normalize_text(d) for d in orch.tasks.open_descriptions()},
                workspace_summary=orch.workspace_summary(), limit=cfg.max_new_tasks)
        except BudgetExceeded:
            return
        except AgentsError as exc:
            log.warning("task_generation_failed", error=str(exc))
            orch.alerts.alert("critical_error" if "Auth" in type(exc).__name__ else "api_limit",
                              f"the CEO could not generate tasks: {exc}")
            return
        for proposed in accepted:
            task = orch.tasks.create(**proposed_to_kwargs(proposed))
            orch.enqueue(task)
            log.info("task_generated", task_id=task.id, title=task.title, type=task.type.value,
                     priority=task.priority.name.lower())
        self._watch_repeats(skipped, cfg.loop_threshold)

    def _watch_repeats(self, skipped: list[dict[str, str]], threshold: int) -> None:
        """The CEO proposing the same task again and again is a loop: alert once per task."""
        counts: dict[str, int] = self.orch.memory.recall("ceo", "duplicate_proposals", {}) or {}
        for item in skipped:
            fp = fingerprint(item["title"])
            counts[fp] = counts.get(fp, 0) + 1
            if counts[fp] == threshold:
                self.orch.alerts.alert("task_loop", f"the CEO proposed '{item['title']}' {threshold} times",
                                       title=item["title"])
        self.orch.memory.remember("ceo", "duplicate_proposals", counts)

    def housekeeping(self) -> None:
        cfg = self.orch.live.current
        pruned = self.orch.memory.prune_activity(cfg.memory.activity_retention_days)
        expired = self.orch.memory.cache_prune()
        if pruned or expired:
            log.info("housekeeping", activity_rows_pruned=pruned, cache_rows_expired=expired)
