"""Aim a signal at a moment of the daemon's work and record what that moment really was.

Moments are recognised from outside the process:

* ``llm_call``   a request reached the fake LLM server and its answer is still held back (server delay);
* ``tests_run``  a pytest child of the daemon is running;
* ``git_commit`` a git plumbing step of a commit (read-tree, write-tree, commit-tree, update-ref) is running;
* ``git_merge``  ``git merge`` is running;
* ``db_write``   the daemon holds SQLite's WAL write lock (a write transaction is open);
* ``after_commit`` / ``after_merge`` / ``after_handoff``  right after the log event ``git_commit`` /
  ``git_merge`` / ``task_handed_off`` (a git change made, the database not yet told; or a state change just
  committed).

If the moment does not come before the deadline the signal is sent anyway and the
shot is recorded as a miss, so a run never hangs on aiming.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.chaos.observe import LogTail, descendants, git_subcommand, holds_wal_write_lock, is_pytest
from tests.fakes.llm_server import FakeLLMServer

COMMIT_STEPS = ("read-tree", "write-tree", "commit-tree", "update-ref")
AFTER_EVENTS = {"after_commit": "git_commit", "after_merge": "git_merge", "after_handoff": "task_handed_off"}
MOMENTS = ("llm_call", "tests_run", "git_commit", "git_merge", "db_write", *AFTER_EVENTS)


@dataclass
class Shot:
    """One aimed signal: what was asked for and what the daemon was doing when it landed."""

    target: str
    hit: bool
    observed: str
    after_s: float  # seconds from the start of aiming
    children: list[str] = field(default_factory=list)
    last_events: list[str] = field(default_factory=list)

    def line(self) -> str:
        mark = "hit " if self.hit else "MISS"
        return f"{mark} {self.target:<13} after {self.after_s:5.2f}s: {self.observed}"


@dataclass
class Aimer:
    """Watches one daemon process (``pid``), its log (``tail``), its database and the fake LLM server."""

    pid: int
    tail: LogTail
    db: Path
    fake: FakeLLMServer | None = None
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def _check(self, target: str, start_requests: int, start_events: int) -> str | None:
        """A description of the moment if it is happening now, else None."""
        if target == "llm_call":
            assert self.fake is not None, "aiming at llm_call needs the fake server"
            requests = self.fake.requests
            if len(requests) > start_requests:
                body = requests[-1].json or {}
                schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("name", "text")
                return f"LLM request in flight ({schema})"
            return None
        if target == "db_write":
            return "SQLite write transaction open" if holds_wal_write_lock(self.pid, self.db.with_name(
                self.db.name + "-shm")) else None
        if target in AFTER_EVENTS:
            self.tail.poll()
            wanted = AFTER_EVENTS[target]
            event = next((e for e in self.tail.events[start_events:] if e.get("event") == wanted), None)
            return None if event is None else f"just after {wanted} ({_short_event(event)})"
        for child, argv in descendants(self.pid):
            sub = git_subcommand(argv)
            if target == "tests_run" and is_pytest(argv):
                return self._linger(child, f"pytest running (pid {child})", 0.2)
            if target == "git_commit" and sub in COMMIT_STEPS:
                return self._linger(child, f"git {sub} of a commit running (pid {child})", 0.004)
            if target == "git_merge" and sub == "merge":
                return self._linger(child, f"git merge {argv[-1]} running (pid {child})", 0.008)
        return None

    def _linger(self, child: int, what: str, most: float) -> str | None:
        """Let the child get into its work for up to ``most`` seconds, at random (a kill right at
        exec would only ever hit process start-up); None if it finished meanwhile."""
        time.sleep(self.rng.uniform(0.0, most))
        return what if os.path.exists(f"/proc/{child}") else None

    def fire(self, target: str, send: Callable[[], None], *, deadline: float = 15.0,
             ready: Callable[[], bool] = lambda: True) -> Shot:
        """Wait (while ``ready()``) for ``target``, then call ``send``; never longer than ``deadline``."""
        if target not in MOMENTS:
            raise ValueError(f"unknown moment {target!r}; one of {MOMENTS}")
        self.tail.poll()
        start_requests = len(self.fake.requests) if self.fake else 0
        start_events = len(self.tail.events)
        started = time.monotonic()
        observed = None
        while time.monotonic() - started < deadline and ready():
            observed = self._check(target, start_requests, start_events)
            if observed:
                break
            time.sleep(0.0005)
        kids = [" ".join(argv[:4]) for _, argv in descendants(self.pid)]
        send()
        elapsed = time.monotonic() - started
        self.tail.poll()
        last = [str(e.get("event")) for e in self.tail.events[-6:]]
        return Shot(target, observed is not None, observed or "deadline passed; signalled anyway", elapsed,
                    kids, last)


def _short_event(event: dict[str, Any]) -> str:
    keys = ("task_id", "branch", "stage", "agent", "subject")
    return ", ".join(f"{k}={event[k]}" for k in keys if event.get(k))[:160]


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every descendant at once: what systemd does to the unit's cgroup after
    the main process crashed (KillMode=mixed), and what a power cut does to everything."""
    family = [pid, *(child for child, _ in descendants(pid))]
    for member in family:
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signal.SIGKILL)


def plan(count: int, targets: tuple[str, ...], seed: int) -> list[tuple[str, float]]:
    """``count`` (target, hold-off seconds) pairs: the targets in turn, each after a random pause so
    the shots spread over the workload instead of all landing on its first task."""
    rng = random.Random(seed)
    return [(targets[i % len(targets)], round(rng.uniform(0.0, 1.0), 2)) for i in range(count)]
