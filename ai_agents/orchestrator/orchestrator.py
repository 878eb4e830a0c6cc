"""TaskOrchestrator: queues per role, worker threads, the main loop, recovery and escalation.

It owns every thread of the daemon (workers, the APScheduler jobs, the decision
executor) and the stop event; agents and flows never touch threading or signals.
SQLite is the queue: each queued task carries its role, the in-memory queues hold
only a small prefetch of each role's first tasks (refilled by ``dispatch`` through
an indexed read), and every state change is one transaction guarded by the
attempt's lease and its fencing token (see lease.py). The main loop does
bookkeeping only: what needs a model (generation, escalation decisions) is queued
for the CEO's workers.
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

from ai_agents import attempt
from ai_agents.agents.base import proposed_to_kwargs
from ai_agents.agents.ceo import CEOAgent
from ai_agents.cluster.singletons import LocalSingletons, Singletons
from ai_agents.config.live import ConfigWatcher, LiveConfig
from ai_agents.config.models import Settings
from ai_agents.domain import CEO_WORK, Priority, Role, Task, TaskStatus, TaskType, iso, utcnow
from ai_agents.errors import AgentsError, BudgetExceeded, ErrorAction, LeaseLost, action_for
from ai_agents.memory.store import MemoryStore
from ai_agents.memory.tasks import TaskStore
from ai_agents.orchestrator.ceo_work import EscalationFlow, GenerationFlow
from ai_agents.orchestrator.flows import Flow, FlowResult
from ai_agents.orchestrator.lease import Lease
from ai_agents.orchestrator.pacing import GenerationPacer
from ai_agents.orchestrator.ports import Alerts, Notifier
from ai_agents.orchestrator.queues import RoleQueues
from ai_agents.orchestrator.recovery import Recovery
from ai_agents.orchestrator.supervisor import Supervisor
from ai_agents.orchestrator.worker import Worker

log = structlog.get_logger("ai_agents.orchestrator")

PREFETCH_PER_WORKER = 2  # queued task ids held in memory per worker of a role (the rest wait in SQLite)
MIN_PREFETCH = 4
ROUTE_BATCH = 500


class TaskOrchestrator:
    def __init__(self, *, live: LiveConfig, tasks: TaskStore, memory: MemoryStore, ceo: CEOAgent,
                 flows: dict[TaskType, Flow], alerts: Alerts, notifier: Notifier,
                 budget_check: Callable[[], None], workspace_summary: Callable[[], str],
                 executor: Executor | None = None, watcher: ConfigWatcher | None = None,
                 dispatch_interval: float = 1.0, clock: Callable[[], datetime] = utcnow,
                 node_id: str | None = None, singletons: Singletons | None = None,
                 on_heartbeat: Callable[[dict[str, Any]], None] | None = None):
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
        # In a cluster (several daemons on one PostgreSQL): this node's id leads its lease owners, the
        # singleton jobs run where the advisory lock is held, and each heartbeat updates the node's row.
        self.node_id = node_id
        self.singletons: Singletons = singletons or LocalSingletons()
        self.on_heartbeat = on_heartbeat
        self.stop_event = threading.Event()
        self.queues = RoleQueues(live.current.agents.enabled_roles())
        self.supervisor = Supervisor(self)
        self.recovery = Recovery(self)
        self.scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
        self.started_at = utcnow()
        self.loop_at: datetime | None = None
        self.loop_duration_ms: float | None = None
        self.loop_lag_seconds: float | None = None
        self._loop_started: float | None = None
        self._budget_blocked_until = 0.0
        self.pacer = GenerationPacer(live, memory, clock=clock)
        # The CEO's bookkeeping runs as queued tasks (never in the main loop).
        self.flows.setdefault(TaskType.GENERATION, GenerationFlow(ceo, tasks, memory, live, self.pacer, alerts,
                                                                  workspace_summary=lambda: self.workspace_summary()))
        self.flows.setdefault(TaskType.ESCALATION, EscalationFlow(ceo, tasks, live))
        live.subscribe(self._on_config_change)

    # --- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        cfg = self.live.current.orchestrator
        requeued, escalated = self.tasks.recover_orphans(
            cfg.max_task_attempts, owner_prefix=f"{self.node_id}:" if self.node_id else None)
        if requeued or escalated:
            log.warning("tasks_recovered", requeued=requeued, escalated=escalated)
        self.tasks.unroute_queued()  # the enabled roles may have changed: route every queued task again
        while self._route(ROUTE_BATCH) == ROUTE_BATCH:
            pass
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
        # READY before the jobs run: the first heartbeat's STATUS must not overtake it.
        self.notifier.ready(self.status_line())
        self.scheduler.start()
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
            lease = worker.lease
            if lease is None:
                continue
            # End the attempt first: its test run, git or deployment command is killed, and the
            # thread can change nothing more; then the task goes back to the queue.
            lease.cancel("interrupted by shutdown", wait=True)
            if self.tasks.release(lease.task_id, lease.owner, "interrupted by shutdown; will resume at start",
                                  token=lease.token):
                log.warning("task_interrupted", task_id=lease.task_id, worker=worker.name)
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
        if task.type not in CEO_WORK:
            self.pacer.reset("task_submitted")
        self.enqueue(task)
        return task

    def submit_internal(self, type: TaskType, title: str, payload: dict[str, Any] | None = None) -> Task:
        """Queue the CEO's own bookkeeping (generation, an escalation decision) ahead of other work."""
        task = self.submit_task(type, title, payload=payload or {}, priority=Priority.HIGH, assigned_agent="ceo")
        log.info("ceo_work_queued", task_id=task.id, type=task.type.value, target=(payload or {}).get("target"))
        return task

    def enqueue(self, task: Task) -> bool:
        """Route ``task`` to its role (in SQLite) and put it on that role's in-memory queue."""
        role = self._role_or_escalate(task)
        if role is None or not self.tasks.route(task.id, role.value):
            return False  # unroutable, or no longer queued
        return self.queues.put(role, task)

    def _role_or_escalate(self, task: Task) -> Role | None:
        role = self.role_for(task)
        if role is None:
            self.tasks.transition(task.id, TaskStatus.ESCALATED, expected=TaskStatus.QUEUED,
                                  error=f"no enabled agent can run a {task.type.value} task")
            log.error("task_unroutable", task_id=task.id, type=task.type.value)
        return role

    def _route(self, limit: int) -> int:
        """Route queued tasks that have no role yet (submitted by the CLI, children, all at start-up), in
        one transaction; ``dispatch`` then takes each role's first few into memory."""
        batch = self.tasks.unrouted(limit)
        routes: dict[str, str] = {}
        for task in batch:
            if task.parent_id is None and task.type not in CEO_WORK:
                self.pacer.reset("task_submitted")
            role = self._role_or_escalate(task)
            if role is not None:
                routes[task.id] = role.value
        self.tasks.route_many(routes)
        return len(batch)

    def prefetch(self, role: Role) -> int:
        return max(MIN_PREFETCH, PREFETCH_PER_WORKER * self.live.current.agents.for_role(role).workers)

    def dispatch(self) -> int:
        """Refill each role's in-memory queue with its first few queued tasks from SQLite.

        Two indexed reads of at most ``prefetch`` rows per role: the cost does not grow with the
        number of queued tasks. A new task of higher priority than those held is among the first
        few, so it is put on the queue ahead of them.
        """
        self._route(ROUTE_BATCH)
        if not self.tasks.any_queued():
            return 0  # idle: one indexed read instead of two per role (less load on a shared server)
        return sum(self.refill(role) for role in self.queues.roles)

    def refill(self, role: Role) -> int:
        """Put ``role``'s first few queued tasks on its in-memory queue (one indexed read)."""
        added = 0
        for task in self.tasks.next_for_role(role.value, self.prefetch(role)):
            added += int(self.queues.put(role, task))
        return added

    def running_low(self, role: Role) -> bool:
        """A worker took the last prefetched ids: refill now rather than at the next dispatch."""
        return self.queues.depth(role) * 2 < self.prefetch(role)

    def queue_depths(self) -> dict[str, int]:
        """Queued tasks per role, as SQLite has them (the in-memory queues hold only a prefetch)."""
        counts = self.tasks.queued_by_role()
        return {role.value: counts.get(role.value, 0) for role in self.queues.roles}

    # --- running one task (called by a worker thread) -----------------------------------
    def execute(self, worker: Worker, task_id: str) -> None:
        cfg = self.live.current.orchestrator
        # Only a task queued for this worker's role: the id came from the role's prefetch, which may hold an id
        # taken again by a refill before its claim, and since handed to the next stage's role.
        task = self.tasks.claim(task_id, worker.owner, lease_seconds=cfg.task_timeout, role=worker.role.value)
        if task is None and self.node_id:
            # Another node took it: take the role's next free task instead (SKIP LOCKED), not nothing.
            task = self.tasks.claim_next(worker.role.value, worker.owner, lease_seconds=cfg.task_timeout)
        if task is None:
            return  # someone else has it, or it is no longer queued
        flow = self.flows[task.type]
        lease = Lease(self.tasks, task.id, worker.owner, task.lease_token,
                      beat_every=min(5.0, cfg.stall_timeout / 10))
        lease.bind_thread()
        worker.lease = lease
        started = time.monotonic()
        try:
            with structlog.contextvars.bound_contextvars(task_id=task.id, agent=worker.role.value):
                details = {"title": task.title, "attempt": task.attempts, "stage": task.payload.get("stage")}
                self.memory.log_activity(worker.role.value, "task_started", details, task_id=task.id)
                log.info("task_started", title=task.title, type=task.type.value, attempt=task.attempts,
                         worker=worker.name, fencing=lease.token)
                try:
                    with attempt.bound(lease):
                        outcome = flow.run(task)
                    lease.check()
                except LeaseLost as exc:
                    self._lease_lost(worker, task, str(exc))
                    return
                except Exception as exc:  # every error is handled and logged in handle_failure
                    self.handle_failure(worker, task, exc, lease)
                    return
                self._persist(worker, task, lease, outcome,
                              duration_ms=round((time.monotonic() - started) * 1000, 1))
        finally:
            worker.lease = None

    def _lease_lost(self, worker: Worker, task: Task, reason: str) -> None:
        """The attempt was ended (timed out, stalled, reclaimed): its result is discarded, nothing is changed."""
        log.warning("lease_lost", reason=reason, worker=worker.name, action="result discarded")
        self.memory.log_activity(worker.role.value, "lease_lost", {"reason": reason[:500]}, task_id=task.id)

    def _persist(self, worker: Worker, task: Task, lease: Lease, outcome: FlowResult, duration_ms: float) -> None:
        if outcome.awaiting_approval:
            progress = {**outcome.result, "stage": outcome.next_stage or task.payload.get("stage")}
            if not self.tasks.request_approval(task.id, outcome.awaiting_approval, outcome.result, progress,
                                               owner=lease.owner, token=lease.token):
                self._lease_lost(worker, task, "lease lost before the approval request")
                return
            self.alerts.alert("approval_needed", f"task {task.id} waits for approval to {outcome.awaiting_approval}",
                              task_id=task.id, action=outcome.awaiting_approval)
            log.info("task_awaiting_approval", action=outcome.awaiting_approval)
            return
        if outcome.next_stage:
            next_stage = dataclasses.replace(task, payload={**task.payload, "stage": outcome.next_stage})
            role = self.role_for(next_stage) or worker.role
            if self.tasks.handoff(task.id, worker.owner, outcome.next_stage, role.value, outcome.result,
                                  token=lease.token):
                log.info("task_handed_off", stage=outcome.next_stage, to=role.value, duration_ms=duration_ms)
                self.dispatch()
            else:
                self._lease_lost(worker, task, "lease lost before the hand-off")
            return
        children = [proposed_to_kwargs(p) for p in outcome.follow_ups]
        created = self.tasks.complete(task.id, worker.owner, outcome.result, children, token=lease.token)
        if created is None:
            self._lease_lost(worker, task, "lease lost before completion (the task was reclaimed)")
            return
        if task.type not in CEO_WORK:
            self.pacer.reset("task_finished")
        for child in created:
            log.info("task_generated" if task.type == TaskType.GENERATION else "task_follow_up",
                     child_id=child.id, title=child.title, type=child.type.value,
                     priority=child.priority.name.lower())
        if created:
            self.dispatch()  # routes the children, in priority order
        self.memory.log_activity(worker.role.value, "task_completed",
                                 {"duration_ms": duration_ms, "children": [c.id for c in created]}, task_id=task.id)
        log.info("task_completed", duration_ms=duration_ms, children=[c.id for c in created])

    def handle_failure(self, worker: Worker, task: Task, exc: Exception, lease: Lease | None = None) -> None:
        """The one place where an error becomes an action on the task."""
        token = lease.token if lease is not None else None
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
                                         token=token, error=reason)

        if action == ErrorAction.WAIT_FOR_BUDGET:
            self._budget_blocked_until = time.monotonic() + 60
            moved = self.tasks.release(task.id, worker.owner, "waiting for LLM budget", token=token)
            event = "task_waiting_for_budget"
        elif action == ErrorAction.WAIT_FOR_CAPACITY:
            moved = self.tasks.release(task.id, worker.owner, reason, token=token)
            event = "task_waiting_for_capacity"
        elif action == ErrorAction.RETRY and task.attempts < cfg.max_task_attempts:
            moved, event = move(TaskStatus.QUEUED), "task_retry"
        elif action == ErrorAction.FAIL_AND_ALERT:
            moved, event = move(TaskStatus.FAILED), "task_failed"
            if moved:
                self.alerts.alert("critical_error", f"task {task.id} failed: {reason}", task_id=task.id)
        else:
            moved, event = move(TaskStatus.ESCALATED), "task_escalated"
        if not moved:
            self._lease_lost(worker, task, f"lease lost before recording the failure: {reason}")
            return
        log.warning(event, error=reason, attempt=task.attempts, max_attempts=cfg.max_task_attempts)

    # --- the main loop ---------------------------------------------------------------
    def cycle(self) -> None:
        """Specification's main loop: check, recover stuck tasks, escalations, generate when idle.

        Bookkeeping only: it never calls a model (escalation decisions and generation are queued
        for the CEO's workers), so a hanging provider cannot delay stuck-task recovery or approvals.
        """
        started = time.monotonic()
        if self._loop_started is not None:
            interval = self.live.current.orchestrator.check_interval
            self.loop_lag_seconds = round(max(0.0, started - self._loop_started - interval), 3)
        self._loop_started = started
        # Every step is contained: a failing one is logged (job_failed, named) and the rest still runs.
        self._guard("supervision", self.supervisor.check)()
        self._guard("stuck_tasks", self.recovery.reclaim_stuck)()  # every node: guarded row by row
        # The singletons: on one node of a cluster at a time (advisory locks), handed over when it dies.
        if self.singletons.held("approvals"):
            self._guard("approvals", self.recovery.expire_approvals)()
        if not self.live.current.paused and self._llm_budget_ok():
            if self.singletons.held("escalations"):
                self._guard("escalations", self.recovery.handle_escalations)()
            if self.singletons.held("generation"):
                self._guard("generation", self.recovery.generate_if_idle)()
        if self.singletons.held("retention"):
            self._guard("housekeeping", self.recovery.housekeeping)()
        self.loop_at = utcnow()
        self.loop_duration_ms = round((time.monotonic() - started) * 1000, 1)

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
            "loop_duration_ms": self.loop_duration_ms, "loop_lag_seconds": self.loop_lag_seconds,
            "check_interval": cfg.orchestrator.check_interval,
            "heartbeat_interval": cfg.orchestrator.heartbeat_interval, "paused": cfg.paused,
            "queues": self.queue_depths(), "current_tasks": self.supervisor.current_tasks(),
            "generation": self.pacer.snapshot(),
            "unhealthy_roles": sorted(self.supervisor.unhealthy_roles), "stopped_at": None,
            "restart_required": self.live.restart_required,  # edited keys that wait for a restart
        }

    def heartbeat(self) -> None:
        self.supervisor.check()
        state = self.heartbeat_state()
        self.memory.set_state("heartbeat", state)
        if self.on_heartbeat is not None:
            self.on_heartbeat(state)
        self.notifier.status(self.status_line(state["queues"]))
        if self._loop_alive():
            self.notifier.watchdog()

    def _loop_alive(self) -> bool:
        interval = self.live.current.orchestrator.check_interval
        last = self.loop_at or self.started_at
        return (utcnow() - last).total_seconds() < max(3 * interval, interval + 120)

    def status_line(self, depths_by_role: dict[str, int] | None = None) -> str:
        by_role = self.queue_depths() if depths_by_role is None else depths_by_role
        depths = ", ".join(f"{k}={v}" for k, v in by_role.items() if v) or "empty"
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
        if any(k == "company" or k.startswith("company.") for k in keys):
            self.pacer.reset("company_changed")

