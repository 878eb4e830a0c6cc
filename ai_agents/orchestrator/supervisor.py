"""Worker threads per role: started, watched, restarted when they die, replaced when they hang."""

from __future__ import annotations

import time
from collections import deque
from typing import Protocol

import structlog

from ai_agents.config.live import LiveConfig
from ai_agents.domain import Role
from ai_agents.orchestrator.ports import Alerts
from ai_agents.orchestrator.worker import Worker, WorkerHost

log = structlog.get_logger("ai_agents.orchestrator")


class SupervisorHost(WorkerHost, Protocol):
    """What the supervisor needs of the orchestrator: a worker's host, plus the live config and alerts."""

    live: LiveConfig
    alerts: Alerts

MAX_RESTARTS_PER_HOUR = 5


class Supervisor:
    def __init__(self, orchestrator: SupervisorHost):
        self.orch = orchestrator
        self.workers: list[Worker] = []
        self.unhealthy_roles: set[str] = set()
        self._restarts: dict[Role, deque[float]] = {}
        self._generation = 0

    def start_workers(self) -> None:
        agents = self.orch.live.current.agents
        for role in self.orch.queues.roles:
            for i in range(agents.for_role(role).workers):
                self._spawn(role, i)

    def _spawn(self, role: Role, index: int) -> Worker:
        worker = Worker(self.orch, role, index, self._generation)
        self.workers.append(worker)
        worker.start()
        return worker

    def current_tasks(self) -> dict[str, str]:
        return {w.name: w.current_task for w in self.workers if w.current_task and not w.retired.is_set()}

    def worker_running(self, task_id: str) -> Worker | None:
        return next((w for w in self.workers if w.current_task == task_id and not w.retired.is_set()), None)

    def check(self) -> None:
        """Restart workers whose thread died (a bug escaped); too many restarts mark the role unhealthy."""
        if self.orch.accepting_stopped():
            return
        for worker in list(self.workers):
            if worker.is_alive() or worker.retired.is_set():
                continue
            self.workers.remove(worker)
            self.replace(worker, reason="worker thread died")

    def replace(self, worker: Worker, reason: str) -> None:
        """Retire ``worker`` and start another for its role, within the restart limit.

        A running attempt is ended first: its lease is cancelled (every later check fails) and the
        child processes of its thread (tests, git, deployment commands) are killed.
        """
        worker.retired.set()
        if worker.lease is not None:
            worker.lease.cancel(reason)
        if worker in self.workers:
            self.workers.remove(worker)
        role = worker.role
        now = time.monotonic()
        history = self._restarts.setdefault(role, deque())
        while history and now - history[0] > 3600:
            history.popleft()
        if len(history) >= MAX_RESTARTS_PER_HOUR:
            if role.value not in self.unhealthy_roles:
                self.unhealthy_roles.add(role.value)
                self.orch.alerts.alert("role_unhealthy", f"role {role.value} restarted {len(history)} times in an "
                                       "hour; not restarting it again", role=role.value)
            return
        history.append(now)
        self._generation += 1
        new = self._spawn(role, worker.index)
        self.orch.alerts.alert("worker_restarted", f"{worker.name} replaced by {new.name}: {reason}",
                               role=role.value, worker=worker.name, reason=reason)

    def join(self, grace: float) -> list[Worker]:
        """Wait up to ``grace`` seconds for workers to finish; return those still busy."""
        deadline = time.monotonic() + grace
        for worker in self.workers:
            worker.thread.join(max(0.0, deadline - time.monotonic()))
        return [w for w in self.workers if w.is_alive()]
