"""TaskOrchestrator: queues per role, worker threads, the main loop, recovery and escalation.

It owns every thread of the daemon (workers, the APScheduler jobs, the decision
executor) and the stop event; agents and flows never touch threading or signals.
SQLite is the source of truth: queues are rebuilt from ``tasks`` and every state
change is one transaction guarded by the worker's lease.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import datetime
from typing import Any

import structlog
from apscheduler.schedulers.background import BackgroundScheduler

from ai_agents.agents.base import proposed_to_kwargs
from ai_agents.agents.ceo import CEOAgent
from ai_agents.config.live import ConfigWatcher, LiveConfig
from ai_agents.config.models import Settings
from ai_agents.domain import Role, Task, TaskStatus, TaskType, iso, utcnow
from ai_agents.errors import AgentsError, BudgetExceeded, ErrorAction, action_for
from ai_agents.memory.store import MemoryStore
from ai_agents.memory.tasks import TaskStore
from ai_agents.orchestrator.flows import Flow, FlowResult
from ai_agents.orchestrator.ports import Alerts, Notifier
from ai_agents.orchestrator.queues import RoleQueues
from ai_agents.orchestrator.recovery import Recovery
from ai_agents.orchestrator.supervisor import Supervisor
from ai_agents.orchestrator.worker import Worker

log = structlog.get_logger("ai_agents.orchestrator")


class TaskOrchestrator:
    def __init__(self, *, live: LiveConfig, tasks: TaskStore, memory: MemoryStore, ceo: CEOAgent,
                 flows: dict[TaskType, Flow], alerts: Alerts, notifier: Notifier,
                 budget_check: Callable[[], None], workspace_summary: Callable[[], str],
                 executor: Executor | None = None, watcher: ConfigWatcher | None = None,
                 dispatch_interval: float = 1.0):
        self.live = live
        self.tasks = tasks
        self.memory = memory
        self.ceo = ceo
        self.flows = flows
        self.alerts = alerts
        self.notifier = notifier
        self.budget_check = budget_check
        self.workspace_summary = workspace_summary
        self.executor = executor
        self.watcher = watcher
        self.dispatch_interval = dispatch_interval
        self.stop_event = threading.Event()
        self.queues = RoleQueues(live.current.agents.enabled_roles())
        self.supervisor = Supervisor(self)
        self.recovery = Recovery(self)
        self.scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
        self.started_at = utcnow()
        self.loop_at: datetime | None = None
        self._budget_blocked_until = 0.0
        live.subscribe(self._on_config_change)

    # --- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        cfg = self.live.current.orchestrator
        requeued, escalated = self.tasks.recover_orphans(cfg.max_task_attempts)
        if requeued or escalated:
            log.warning("tasks_recovered", requeued=requeued, escalated=escalated)
        self.supervisor.start_workers()
        self.dispatch()
        self.scheduler.add_job(self._guard("main_loop", self.cycle), "interval", seconds=cfg.check_interval,
                               id="main_loop", next_run_time=datetime.now().astimezone())
        self.scheduler.add_job(self._guard("heartbeat", self.heartbeat), "interval", seconds=cfg.heartbeat_interval,
                               id="heartbeat", next_run_time=datetime.now().astimezone())
        self.scheduler.add_job(self._guard("dispatch", self.dispatch), "interval", seconds=self.dispatch_interval,
                               id="dispatch")
        if self.watcher is not None:
            self.scheduler.add_job(self._guard("config_watch", self.watcher.check), "interval", seconds=1,
                                   id="config_watch")
        self.scheduler.start()
        self.notifier.ready(self.status_line())
        log.info("orchestrator_started", roles=[r.value for r in self.queues.roles],
                 workers=len(self.supervisor.workers), recovered=len(requeued), escalated=len(escalated))

    def request_stop(self) -> None:
        """Safe from a signal handler: only sets a flag."""
        self.stop_event.set()

    def accepting_stopped(self) -> bool:
        return self.stop_event.is_set()

    def shutdown(self) -> dict[str, Any]:
        """Stop taking tasks, let in-flight ones finish within the grace period, persist the rest."""
        grace = self.live.current.orchestrator.shutdown_grace
        self.stop_event.set()
        self.notifier.stopping()
        log.info("shutdown_started", grace_seconds=grace, in_flight=self.supervisor.current_tasks())
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self.queues.wake(per_role=len(self.supervisor.workers))
        unfinished = self.supervisor.join(grace)
        for worker in unfinished:
            if worker.current_task and self.tasks.release(worker.current_task, worker.owner,
                                                           "interrupted by shutdown; will resume at start"):
                log.warning("task_interrupted", task_id=worker.current_task, worker=worker.name)
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)
        state = self.heartbeat_state()
        state["stopped_at"] = iso(utcnow())
        self.memory.set_state("heartbeat", state)
        log.info("shutdown_finished", unfinished=[w.current_task for w in unfinished if w.current_task])
        return state

    # --- work intake --------------------------------------------------------------
    def may_take_work(self) -> bool:
        return not self.live.current.paused and time.monotonic() >= self._budget_blocked_until

    def role_for(self, task: Task) -> Role | None:
        flow = self.flows.get(task.type)
        if flow is None:
            return None
        role = flow.role_for(task)
        return role if role in self.queues.roles else None

    def submit_task(self, type: TaskType | str, title: str, description: str = "", **kwargs: Any) -> Task:
        """Create a queued task and put it on its role's queue."""
        task = self.tasks.create(type, title, description, **kwargs)
        self.memory.log_activity("orchestrator", "task_submitted", {"title": task.title, "type": task.type.value},
                                 task_id=task.id)
        self.enqueue(task)
        return task

    def enqueue(self, task: Task) -> bool:
        role = self.role_for(task)
        if role is None:
            self.tasks.transition(task.id, TaskStatus.ESCALATED, expected=TaskStatus.QUEUED,
                                  error=f"no enabled agent can run a {task.type.value} task")
            log.error("task_unroutable", task_id=task.id, type=task.type.value)
            return False
        return self.queues.put(role, task)

    def dispatch(self) -> int:
        """Put every queued task of the database on its queue (new submissions, requeued tasks)."""
        added = 0
        for task in self.tasks.list(TaskStatus.QUEUED, limit=100_000):
            if task.deadline is not None or not self.queues.contains(task.id):
                added += int(self.enqueue(task))
        return added

    # --- running one task (called by a worker thread) -----------------------------------
    def execute(self, worker: Worker, task_id: str) -> None:
        cfg = self.live.current.orchestrator
        task = self.tasks.claim(task_id, worker.owner, lease_seconds=cfg.task_timeout)
        if task is None:
            return  # someone else has it, or it is no longer queued
        flow = self.flows[task.type]
        started = time.monotonic()
        with structlog.contextvars.bound_contextvars(task_id=task.id, agent=worker.role.value):
            details = {"title": task.title, "attempt": task.attempts, "stage": task.payload.get("stage")}
            self.memory.log_activity(worker.role.value, "task_started", details, task_id=task.id)
            log.info("task_started", title=task.title, type=task.type.value, attempt=task.attempts,
                     worker=worker.name)
            try:
                outcome = flow.run(task)
            except Exception as exc:  # every error is handled and logged in handle_failure
                self.handle_failure(worker, task, exc)
                return
            self._persist(worker, task, outcome, duration_ms=round((time.monotonic() - started) * 1000, 1))

    def _persist(self, worker: Worker, task: Task, outcome: FlowResult, duration_ms: float) -> None:
        if outcome.awaiting_approval:
            progress = {**outcome.result, "stage": outcome.next_stage or task.payload.get("stage")}
            self.tasks.request_approval(task.id, outcome.awaiting_approval, outcome.result, progress)
            self.alerts.alert("approval_needed", f"task {task.id} waits for approval to {outcome.awaiting_approval}",
                              task_id=task.id, action=outcome.awaiting_approval)
            log.info("task_awaiting_approval", action=outcome.awaiting_approval)
            return
        if outcome.next_stage:
            next_stage = dataclasses.replace(task, payload={**task.payload, "stage": outcome.next_stage})
            role = self.role_for(next_stage) or worker.role
            if self.tasks.handoff(task.id, worker.owner, outcome.next_stage, role.value, outcome.result):
                log.info("task_handed_off", stage=outcome.next_stage, to=role.value, duration_ms=duration_ms)
                self.dispatch()
            else:
                log.warning("task_result_discarded", reason="lease lost before hand-off")
            return
        children = [proposed_to_kwargs(p) for p in outcome.follow_ups]
        created = self.tasks.complete(task.id, worker.owner, outcome.result, children)
        if created is None:
            log.warning("task_result_discarded", reason="lease lost (the task was reclaimed as stuck)")
            return
        for child in created:
            self.enqueue(child)
        self.memory.log_activity(worker.role.value, "task_completed",
                                 {"duration_ms": duration_ms, "children": [c.id for c in created]}, task_id=task.id)
        log.info("task_completed", duration_ms=duration_ms, children=[c.id for c in created])

    def handle_failure(self, worker: Worker, task: Task, exc: Exception) -> None:
        """The one place where an error becomes an action on the task."""
        action = action_for(exc)
        reason = f"{type(exc).__name__}: {exc}"[:4000]
        cfg = self.live.current.orchestrator
        self.memory.log_activity(worker.role.value, "task_error", {"error": reason, "action": action.value},
                                 task_id=task.id)
        if not isinstance(exc, AgentsError):
            # A bug, not a refusal: keep the traceback and tell a human.
            log.error("task_crashed", error=reason, exc_info=exc)
            self.alerts.alert("critical_error", f"task {task.id} crashed: {reason}", task_id=task.id)

        def move(status: TaskStatus) -> bool:
            # Guarded by the lease: a worker whose task was reclaimed as stuck moves nothing.
            return self.tasks.transition(task.id, status, expected=TaskStatus.IN_PROGRESS, owner=worker.owner,
                                         error=reason)

        if action == ErrorAction.WAIT_FOR_BUDGET:
            self._budget_blocked_until = time.monotonic() + 60
            moved = self.tasks.release(task.id, worker.owner, "waiting for LLM budget")
            event = "task_waiting_for_budget"
        elif action == ErrorAction.RETRY and task.attempts < cfg.max_task_attempts:
            moved, event = move(TaskStatus.QUEUED), "task_retry"
        elif action == ErrorAction.FAIL_AND_ALERT:
            moved, event = move(TaskStatus.FAILED), "task_failed"
            if moved:
                self.alerts.alert("critical_error", f"task {task.id} failed: {reason}", task_id=task.id)
        else:
            moved, event = move(TaskStatus.ESCALATED), "task_escalated"
        if not moved:
            log.warning("task_result_discarded", reason="lease lost (the task was reclaimed as stuck)", error=reason)
            return
        log.warning(event, error=reason, attempt=task.attempts, max_attempts=cfg.max_task_attempts)

    # --- the main loop ---------------------------------------------------------------
    def cycle(self) -> None:
        """Specification's main loop: check, recover stuck tasks, escalations, generate when idle."""
        self.supervisor.check()
        self.recovery.reclaim_stuck()
        self.recovery.expire_approvals()
        if not self.live.current.paused and self._llm_budget_ok():
            # Contained: a failing step is logged (job_failed) and the rest of the cycle still runs.
            self._guard("escalations", self.recovery.handle_escalations)()
            self._guard("generation", self.recovery.generate_if_idle)()
        self.recovery.housekeeping()
        self.loop_at = utcnow()

    def _llm_budget_ok(self) -> bool:
        try:
            self.budget_check()
        except BudgetExceeded:
            return False
        self._budget_blocked_until = 0.0
        return True

    def heartbeat_state(self) -> dict[str, Any]:
        cfg = self.live.current
        return {
            "pid": os.getpid(), "started_at": iso(self.started_at), "loop_at": iso(self.loop_at),
            "check_interval": cfg.orchestrator.check_interval,
            "heartbeat_interval": cfg.orchestrator.heartbeat_interval, "paused": cfg.paused,
            "queues": self.queues.depths(), "current_tasks": self.supervisor.current_tasks(),
            "unhealthy_roles": sorted(self.supervisor.unhealthy_roles), "stopped_at": None,
            "restart_required": self.live.restart_required,  # edited keys that wait for a restart
        }

    def heartbeat(self) -> None:
        self.supervisor.check()
        self.memory.set_state("heartbeat", self.heartbeat_state())
        self.notifier.status(self.status_line())
        if self._loop_alive():
            self.notifier.watchdog()

    def _loop_alive(self) -> bool:
        interval = self.live.current.orchestrator.check_interval
        last = self.loop_at or self.started_at
        return (utcnow() - last).total_seconds() < max(3 * interval, interval + 120)

    def status_line(self) -> str:
        depths = ", ".join(f"{k}={v}" for k, v in self.queues.depths().items() if v) or "empty"
        running = len(self.supervisor.current_tasks())
        return f"{'paused; ' if self.live.current.paused else ''}queues: {depths}; running: {running}"

    def _guard(self, name: str, fn: Callable[[], Any]) -> Callable[[], None]:
        """A scheduled job never dies: its exceptions are logged and the next run happens."""
        def job() -> None:
            try:
                fn()
            except Exception as exc:
                log.exception("job_failed", job=name, error=str(exc))
                self.alerts.alert("critical_error", f"{name} failed: {exc}", job=name)
        return job

    def _on_config_change(self, old: Settings, new: Settings, keys: list[str]) -> None:
        if old.orchestrator.check_interval != new.orchestrator.check_interval and self.scheduler.running:
            self.scheduler.reschedule_job("main_loop", trigger="interval", seconds=new.orchestrator.check_interval)
        if old.paused != new.paused:
            log.info("paused" if new.paused else "resumed", in_flight=self.supervisor.current_tasks())

