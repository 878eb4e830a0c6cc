"""One PriorityQueue per role. Entries are (effective priority, created_at, seq, task id).

The queues only hold ids, and only a small prefetch of each role's first queued
tasks (the orchestrator's ``dispatch`` refills them from SQLite): the database
decides (by lease) who really runs a task, so a stale entry is harmless — it
fails to claim and is dropped.
"""

from __future__ import annotations

import itertools
import queue
import threading
from datetime import datetime

from ai_agents.domain import Role, Task


class RoleQueues:
    def __init__(self, roles: list[Role]):
        self._queues: dict[Role, queue.PriorityQueue[tuple[float, float, int, str]]] = {
            role: queue.PriorityQueue() for role in roles
        }
        # task id -> (role, seq) of its live entry; re-putting supersedes older entries.
        self._live: dict[str, tuple[Role, int]] = {}
        self._prio: dict[str, float] = {}  # task id -> priority of its live entry
        self._seq = itertools.count()
        self._lock = threading.Lock()

    @property
    def roles(self) -> list[Role]:
        return list(self._queues)

    def put(self, role: Role, task: Task, now: datetime | None = None) -> bool:
        """Queue ``task`` for ``role`` unless an entry with the same role and priority is already live."""
        if role not in self._queues:
            raise KeyError(f"role {role.value} has no queue (is it disabled in config.yaml?)")
        prio = task.effective_priority(now)
        with self._lock:
            current = self._live.get(task.id)
            # A deadline moves the priority: re-queue it when it moved noticeably, not on every dispatch.
            if current is not None and current[0] == role and abs(self._prio.get(task.id, prio) - prio) < 0.05:
                return False
            seq = next(self._seq)
            self._live[task.id] = (role, seq)
            self._prio[task.id] = prio
        self._queues[role].put((prio, task.created_at.timestamp(), seq, task.id))
        return True

    def get(self, role: Role, timeout: float) -> str | None:
        """The next task id for ``role``, or None after ``timeout`` seconds."""
        q = self._queues[role]
        while True:
            try:
                _, _, seq, task_id = q.get(timeout=timeout)
            except queue.Empty:
                return None
            if not task_id:
                return None  # a wake-up sentinel: the caller re-checks whether to stop
            with self._lock:
                if self._live.get(task_id) == (role, seq):
                    del self._live[task_id]
                    self._prio.pop(task_id, None)
                    return task_id
            # superseded entry: skip it without waiting again

    def wake(self, per_role: int) -> None:
        """Unblock ``per_role`` waiting workers of every role at once (shutdown), ahead of any task."""
        for q in self._queues.values():
            for _ in range(per_role):
                q.put((float("-inf"), 0.0, next(self._seq), ""))

    def contains(self, task_id: str) -> bool:
        with self._lock:
            return task_id in self._live

    def depth(self, role: Role) -> int:
        with self._lock:
            return sum(1 for r, _ in self._live.values() if r == role)

    def depths(self) -> dict[str, int]:
        with self._lock:
            counts = {role.value: 0 for role in self._queues}
            for role, _ in self._live.values():
                counts[role.value] += 1
        return counts

    def total(self) -> int:
        with self._lock:
            return len(self._live)
