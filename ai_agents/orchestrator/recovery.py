"""The main loop's steps besides supervision: stuck tasks, escalations, idle generation, housekeeping.

None of them calls a model: escalation decisions and generation are queued for the CEO's workers
(see ceo_work.py); this loop only notices that they are due.
"""

from __future__ import annotations

from typing import Any, Protocol

import structlog

from ai_agents.config.live import LiveConfig
from ai_agents.domain import CEO_WORK, Task, TaskStatus, TaskType
from ai_agents.memory.alerts import AlertStore
from ai_agents.memory.store import MemoryStore
from ai_agents.memory.tasks import TaskStore
from ai_agents.orchestrator.pacing import GenerationPacer
from ai_agents.orchestrator.ports import Alerts
from ai_agents.orchestrator.supervisor import Supervisor

log = structlog.get_logger("ai_agents.orchestrator")


class RecoveryHost(Protocol):
    """What the main loop's recovery steps need of the orchestrator (TaskOrchestrator)."""

    live: LiveConfig
    tasks: TaskStore
    memory: MemoryStore
    alerts: Alerts
    supervisor: Supervisor
    pacer: GenerationPacer

    def dispatch(self) -> int: ...

    def submit_internal(self, type: TaskType, title: str, payload: dict[str, Any] | None = None) -> Task: ...

BUSY = (TaskStatus.QUEUED, TaskStatus.IN_PROGRESS, TaskStatus.AWAITING_APPROVAL)


class Recovery:
    def __init__(self, orchestrator: RecoveryHost):
        self.orch = orchestrator

    def reclaim_stuck(self) -> None:
        """Attempts past task_timeout (wall time) or stall_timeout (no heartbeat): requeue (or escalate);
        the attempt is ended (its lease cancelled, its child processes killed) and its worker replaced."""
        cfg = self.orch.live.current.orchestrator
        requeued, escalated = self.orch.tasks.expired_leases(cfg.max_task_attempts, cfg.stall_timeout)
        for task_id in requeued + escalated:
            worker = self.orch.supervisor.worker_running(task_id)
            if worker is not None:
                self.orch.supervisor.replace(worker, reason=f"task {task_id} exceeded task_timeout or stall_timeout")
            log.warning("task_stuck", task_id=task_id, action="requeued" if task_id in requeued else "escalated",
                        timeout_seconds=cfg.task_timeout, stall_timeout_seconds=cfg.stall_timeout,
                        alert=True, alert_name="task_stuck",
                        message=f"task {task_id} exceeded task_timeout or stall_timeout")
        if requeued:
            self.orch.dispatch()

    def expire_approvals(self) -> None:
        expired = self.orch.tasks.expire_approvals(self.orch.live.current.approvals.timeout_seconds)
        for task_id in expired:
            log.warning("approval_expired", task_id=task_id, decision="rejected")
        if expired:
            self.orch.dispatch()

    def handle_escalations(self) -> None:
        """Queue one CEO decision per escalated task (the CEO's worker asks the model, never this loop).

        A task escalated again after the CEO's decision is a loop: failed, with an alert, never a
        third round. The CEO's own bookkeeping tasks are never escalated to the CEO: they fail.
        """
        tasks = self.orch.tasks
        cfg = self.orch.live.current.orchestrator
        pending = {str(t.payload.get("target")) for t in tasks.open_of_type(TaskType.ESCALATION)}
        for task in tasks.list(TaskStatus.ESCALATED):
            with structlog.contextvars.bound_contextvars(task_id=task.id, agent="ceo"):
                if task.type in CEO_WORK:
                    tasks.transition(task.id, TaskStatus.FAILED, expected=TaskStatus.ESCALATED, error=task.error)
                    continue
                if task.payload.get("escalations", 0) >= 1:
                    error = f"escalated again after the CEO's decision; last error: {task.error}"
                    tasks.transition(task.id, TaskStatus.FAILED, expected=TaskStatus.ESCALATED, error=error)
                    self.orch.alerts.alert("task_loop", f"task {task.id} keeps failing; given up", task_id=task.id,
                                           title=task.title)
                    continue
                if task.id in pending:
                    continue
                asked = int(task.payload.get("escalation_requests", 0))
                if asked >= cfg.max_task_attempts:
                    tasks.transition(task.id, TaskStatus.FAILED, expected=TaskStatus.ESCALATED,
                                     error=f"the CEO could not decide on it ({asked} tries); last error: {task.error}")
                    log.warning("escalation_undecided", tries=asked)
                    continue
                tasks.update_payload(task.id, {"escalation_requests": asked + 1})
                self.orch.submit_internal(TaskType.ESCALATION, f"Decide on escalated task {task.id}",
                                          payload={"target": task.id})

    def generate_if_idle(self) -> bool:
        """When nothing is queued, running or waiting and the back-off allows it, queue a generation task."""
        orch = self.orch
        cfg = orch.live.current.orchestrator
        if not cfg.generate_when_idle or cfg.max_new_tasks <= 0 or not orch.pacer.due():
            return False
        if orch.tasks.open_of_type(TaskType.GENERATION):
            return False
        counts = orch.tasks.busy_counts(exclude_types=tuple(CEO_WORK))
        if any(counts.get(s.value, 0) for s in BUSY) or counts.get("escalated", 0):
            return False
        orch.submit_internal(TaskType.GENERATION, "Generate new work from the company's goals")
        return True

    def housekeeping(self) -> None:
        cfg = self.orch.live.current
        pruned = self.orch.memory.prune_activity(cfg.memory.activity_retention_days)
        pruned += AlertStore(self.orch.memory.db).prune(cfg.memory.activity_retention_days)
        expired = self.orch.memory.cache_prune()
        if pruned or expired:
            log.info("housekeeping", activity_rows_pruned=pruned, cache_rows_expired=expired)
