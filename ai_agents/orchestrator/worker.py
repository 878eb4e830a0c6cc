"""A worker thread of one role: take a task id, claim it, run its flow, persist the outcome.

The worker never decides what an error means: :func:`ai_agents.errors.action_for` does,
and :meth:`TaskOrchestrator.handle_failure` acts on it.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import TYPE_CHECKING, Protocol

import structlog

from ai_agents.domain import Role
from ai_agents.orchestrator.queues import RoleQueues

if TYPE_CHECKING:
    from ai_agents.orchestrator.lease import Lease

log = structlog.get_logger("ai_agents.orchestrator")


class WorkerHost(Protocol):
    """What a worker needs of the orchestrator that runs it (TaskOrchestrator)."""

    node_id: str | None
    stop_event: threading.Event
    queues: RoleQueues

    def accepting_stopped(self) -> bool: ...

    def may_take_work(self) -> bool: ...

    def running_low(self, role: Role) -> bool: ...

    def refill(self, role: Role) -> int: ...

    def execute(self, worker: Worker, task_id: str) -> None: ...


class Worker:
    def __init__(self, orchestrator: WorkerHost, role: Role, index: int, generation: int = 0):
        self.orch = orchestrator
        self.role = role
        self.name = f"{role.value}-{index}" + (f"-r{generation}" if generation else "")
        self.index = index
        # The node id leads (the host name when not in a cluster): a restarted node recovers its own leases.
        self.owner = f"{orchestrator.node_id or socket.gethostname()}:{os.getpid()}:{self.name}"
        self.current_task: str | None = None
        self.lease: Lease | None = None  # the running attempt's lease: the only handle on it
        self.last_task: str | None = None
        self.retired = threading.Event()  # set when replaced (its task hung) or at shutdown
        self.thread = threading.Thread(target=self._run, name=f"worker-{self.name}", daemon=True)
        self.last_beat = time.monotonic()

    def start(self) -> None:
        self.thread.start()

    def is_alive(self) -> bool:
        return self.thread.is_alive()

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:
            # Escaped every handler (e.g. the database connection cut at a COMMIT): leave a structured record
            # and end the thread; the supervisor restarts the role's worker. Not re-raised: Python would print
            # the traceback as plain text on stderr, beside the JSON log lines.
            log.critical("worker_died", worker=self.name, role=self.role.value, task_id=self.last_task,
                         error=f"{type(exc).__name__}: {exc}", exc_info=exc)

    def _loop(self) -> None:
        log.info("worker_started", worker=self.name, role=self.role.value)
        while not self.orch.accepting_stopped() and not self.retired.is_set():
            self.last_beat = time.monotonic()
            if not self.orch.may_take_work():
                self.orch.stop_event.wait(0.5)
                continue
            task_id = self.orch.queues.get(self.role, timeout=0.5)
            if task_id is None:
                continue
            if self.orch.accepting_stopped() or not self.orch.may_take_work():
                # Taken off the queue just as we stop or pause: it is still queued in the
                # database, and the dispatcher puts it back on the queue.
                continue
            if self.orch.running_low(self.role):
                self.orch.refill(self.role)  # the store is the queue: the next ids are ready when this ends
            self.current_task = self.last_task = task_id
            try:
                self.orch.execute(self, task_id)
            finally:
                self.current_task = None
        log.info("worker_stopped", worker=self.name, role=self.role.value)
