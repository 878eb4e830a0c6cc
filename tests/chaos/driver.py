"""Start, signal and restart the real daemon (``python main.py run``) over one workload."""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.chaos.aim import Aimer, Shot, kill_tree
from tests.chaos.invariants import git, stuck_markers
from tests.chaos.observe import LogTail
from tests.chaos.scenario import all_final, connect, db_path, workspace
from tests.conftest import wait_for
from tests.daemon import Daemon
from tests.fakes.llm_server import FakeLLMServer


@dataclass
class Running:
    daemon: Daemon
    tail: LogTail
    started_at: float

    @property
    def pid(self) -> int:
        assert self.daemon.proc is not None
        return self.daemon.proc.pid

    def alive(self) -> bool:
        return self.daemon.proc is not None and self.daemon.proc.poll() is None

    def assert_alive(self) -> None:
        assert self.alive(), f"the daemon died: {self.tail.other_lines[-10:]}"

    def wait_event(self, name: str, timeout: float = 30.0, **match: Any) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            return next((e for e in self.tail.named(name) if all(e.get(k) == v for k, v in match.items())), None)
        return wait_for(found, timeout=timeout, interval=0.02, message=f"log event {name} {match or ''}")


def start(config: Path) -> Running:
    """Start the daemon and wait until its workers run."""
    daemon = Daemon(config).start()
    running = Running(daemon, LogTail(daemon.stdout_path), time.monotonic())
    try:
        running.wait_event("orchestrator_started")
    except AssertionError:
        daemon.stop()
        raise AssertionError(f"the daemon did not start: {running.tail.other_lines[-10:]}") from None
    return running


def run_to_the_end(config: Path, ids: list[str], timeout: float = 150) -> Running:
    """Start the daemon, wait until every task of ``ids`` is final and stop it (exit status 0 asserted)."""
    running = start(config)
    try:
        wait_for(lambda: all_final(config, ids), timeout=timeout, interval=0.2, message="every task final")
        code, _ = stop(running, 5.0)
    finally:
        running.daemon.stop()
    assert code == 0
    return running


def throttled(check: Callable[[], bool], every: float = 0.1) -> Callable[[], bool]:
    """``check`` evaluated at most every ``every`` seconds (aiming polls far faster than that)."""
    state = {"at": 0.0, "value": True}

    def call() -> bool:
        now = time.monotonic()
        if now - state["at"] >= every:
            state["at"], state["value"] = now, check()
        return bool(state["value"])
    return call


def left_behind(config: Path) -> dict[str, Any]:
    """What a dead daemon left: git operations half-way, the branch, tasks still marked running."""
    ws = workspace(config)
    with connect(config) as conn:
        running = conn.execute("SELECT COUNT(*) FROM tasks WHERE status = 'in_progress'").fetchone()[0]
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
    return {"git_markers": stuck_markers(ws),
            "branch": git(ws, "symbolic-ref", "--short", "-q", "HEAD", check=False).strip(),
            "dirty_files": len(git(ws, "status", "--porcelain").splitlines()),
            "tasks_in_progress": running, "integrity": integrity}


@dataclass
class KillRecord:
    shot: Shot
    left: dict[str, Any]
    recovered: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        return f"{self.shot.line()} | left {self.left} | restart {self.recovered}"


def kill_and_restart(config: Path, fake: FakeLLMServer, ids: list[str], shots: list[tuple[str, float]],
                     seed: int, deadline: float = 15.0) -> tuple[Running, list[KillRecord]]:
    """For each (target, hold-off): start, pause, aim a SIGKILL at target, note what it left.

    Returns the daemon started after the last kill, still running, and the records.
    """
    records: list[KillRecord] = []
    running = start(config)
    for i, (target, hold) in enumerate(shots):
        pending = throttled(lambda: not all_final(config, ids))
        if hold:
            time.sleep(hold)  # a random pause: the shots spread over the workload
        aimer = Aimer(running.pid, running.tail, db_path(config), fake, rng=random.Random(seed * 1000 + i))
        shot = aimer.fire(target, lambda pid=running.pid: kill_tree(pid), deadline=deadline, ready=pending)
        assert running.daemon.wait(10) == -signal.SIGKILL
        record = KillRecord(shot, left_behind(config))
        records.append(record)
        running = start(config)
        record.recovered = {e["event"]: e.get("requeued") or e.get("actions") for e in running.tail.events
                            if e.get("event") in ("tasks_recovered", "workspace_recovered")}
    return running, records


def stop(running: Running, grace: float) -> tuple[int, float]:
    """SIGTERM; (exit code, seconds until the process was gone)."""
    t0 = time.monotonic()
    running.daemon.signal(signal.SIGTERM)
    code = running.daemon.wait(grace + 30)
    took = time.monotonic() - t0
    running.tail.poll()  # the last lines it wrote
    return code, took
