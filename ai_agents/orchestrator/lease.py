"""Lease: the only handle on a running attempt (task id, owner, fencing token, cancellation).

The worker that claims a task gets a :class:`Lease` for that claim. Every side
effect of the attempt is preceded by :meth:`Lease.check` (a compare of the token
in SQLite) and every step ends with :meth:`Lease.beat` (the heartbeat that
``stall_timeout`` watches). When the daemon ends the attempt (task_timeout,
stall_timeout, shutdown) it calls :meth:`Lease.cancel`: from then on every check
fails, and the child processes the attempt's thread started (test runs, git,
deployment commands) are killed, found through ``/proc/self/task/<tid>/children``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import structlog

from ai_agents.errors import LeaseLost
from ai_agents.memory.tasks import TaskStore

log = structlog.get_logger("ai_agents.orchestrator")

KILL_GRACE = 2.0  # seconds between SIGTERM (git removes its lock files) and SIGKILL


def thread_children(native_tid: int) -> list[int]:
    """Pids of the processes the thread ``native_tid`` of this process started (and that still run)."""
    path = Path(f"/proc/{os.getpid()}/task/{native_tid}/children")
    try:
        return [int(p) for p in path.read_text().split()]
    except (OSError, ValueError):
        return []


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (a test runner's pytest, bwrap's children...)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            tids = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for tid in tids:
            with contextlib.suppress(OSError, ValueError):
                todo += [int(p) for p in Path(f"/proc/{current}/task/{tid}/children").read_text().split()]
    return found


def kill_processes(roots: list[int], grace: float = KILL_GRACE) -> list[int]:
    """SIGTERM ``roots``, their process groups and descendants; SIGKILL what is left after ``grace``."""
    victims = [p for root in roots for p in descendants(root)]
    if not victims:
        return []
    groups = {root for root in roots if _pgid(root) == root}  # session leaders (tests, deploy commands)

    def send(sig: signal.Signals) -> None:
        for pgid in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, sig)
        for pid in victims:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)

    send(signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(p) for p in victims):
        time.sleep(0.05)
    send(signal.SIGKILL)
    return victims


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class Lease:
    """One claim of one task by one worker thread."""

    def __init__(self, tasks: TaskStore, task_id: str, owner: str, token: int, *, beat_every: float = 5.0,
                 clock: Callable[[], float] = time.monotonic):
        self.tasks = tasks
        self.task_id = task_id
        self.owner = owner
        self.token = token
        self.beat_every = beat_every
        self.clock = clock
        self.thread_id: int | None = None
        self.cancelled = threading.Event()
        self.reason: str | None = None
        self._last_beat = clock()
        self._adopted: set[int] = set()  # processes another thread started that work for this attempt
        self._adopted_lock = threading.Lock()

    def bind_thread(self) -> None:
        """Record the thread that runs the attempt (whose children a cancel kills)."""
        self.thread_id = threading.get_native_id()

    def check(self) -> None:
        if self.cancelled.is_set():
            raise LeaseLost(f"task {self.task_id}: {self.reason or 'the attempt was ended'}")
        if not self.tasks.lease_current(self.task_id, self.owner, self.token):
            self._lost("the lease was taken back (task reclaimed)")

    def beat(self) -> None:
        if self.cancelled.is_set():
            raise LeaseLost(f"task {self.task_id}: {self.reason or 'the attempt was ended'}")
        now = self.clock()
        if now - self._last_beat < self.beat_every:
            return
        if not self.tasks.renew_lease(self.task_id, self.owner, self.token):
            self._lost("the lease was taken back (task reclaimed)")
        self._last_beat = now

    def pause(self, seconds: float) -> None:
        """Wait ``seconds`` (real time), beating meanwhile; LeaseLost at once when the attempt is ended."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0 and not self.cancelled.wait(min(left, self.beat_every)):
            self.beat()
        self.beat()

    def _lost(self, reason: str) -> None:
        self.reason = self.reason or reason
        self.cancelled.set()
        log.warning("lease_lost", task_id=self.task_id, fencing=self.token, reason=reason)
        raise LeaseLost(f"task {self.task_id}: {reason}")

    def cancel(self, reason: str, *, wait: bool = False) -> None:
        """End the attempt: every later check fails; the thread's child processes are killed.

        The kill (SIGTERM, then SIGKILL after a grace) runs in its own thread unless ``wait``,
        so the main loop never blocks on it.
        """
        self.reason = self.reason or reason
        self.cancelled.set()
        if self.thread_id is None:
            return
        if wait:
            self.kill_children()
        else:
            threading.Thread(target=self.kill_children, name=f"reap-{self.task_id}", daemon=True).start()

    def adopt(self, pid: int) -> None:
        with self._adopted_lock:
            self._adopted.add(pid)

    def disown(self, pid: int) -> None:
        with self._adopted_lock:
            self._adopted.discard(pid)

    def kill_children(self) -> list[int]:
        """Kill the attempt's processes: those its thread started, and those it adopted (see attempt.working)."""
        if self.thread_id is None:
            return []
        with self._adopted_lock:
            adopted = sorted(self._adopted)
        killed = kill_processes([*thread_children(self.thread_id), *adopted])
        if killed:
            log.warning("attempt_processes_killed", task_id=self.task_id, pids=killed, reason=self.reason)
        return killed
