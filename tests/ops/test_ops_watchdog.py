"""The in-daemon watchdog: a main loop that stops cycling ends the process with exit 70 and every stack."""

from __future__ import annotations

import json
import sqlite3
import threading

import pytest
import yaml

from ai_agents.config import load_config
from ai_agents.errors import ConfigError
from ai_agents.ops.watchdog import ALERT_NAME, WATCHDOG_EXIT_CODE, LoopWatchdog
from tests.conftest import wait_for
from tests.daemon import Daemon


class _Recorder:
    def __init__(self) -> None:
        self.alerts: list[tuple[str, dict]] = []
        self.exits: list[int] = []
        self.exited = threading.Event()

    def alert(self, message: str, fields: dict) -> None:
        self.alerts.append((message, fields))

    def exit(self, code: int) -> None:
        self.exits.append(code)
        self.exited.set()


def test_a_stuck_marker_fires_once_with_every_threads_stack():
    rec = _Recorder()
    dog = LoopWatchdog(lambda: "same", lambda: 0.3, alert=rec.alert, exit=rec.exit, poll_interval=0.05)
    dog.start()
    assert rec.exited.wait(5), "the watchdog never fired on a loop that does not cycle"
    dog.stop()
    assert rec.exits == [WATCHDOG_EXIT_CODE]
    message, fields = rec.alerts[0]
    assert "has not cycled" in message and fields["exit_code"] == WATCHDOG_EXIT_CODE
    names = " ".join(fields["stacks"])
    assert "MainThread" in names and "loop-watchdog" in names
    assert "test_a_stuck_marker_fires_once" in "".join(fields["stacks"].values())


def test_a_cycling_loop_and_a_zero_timeout_never_fire():
    counter = iter(range(10**9))
    rec = _Recorder()
    now = [0.0]
    cycling = LoopWatchdog(lambda: next(counter), lambda: 1.0, alert=rec.alert, exit=rec.exit, clock=lambda: now[0])
    off = LoopWatchdog(lambda: "same", lambda: 0.0, alert=rec.alert, exit=rec.exit, clock=lambda: now[0])
    cycling._seen, off._seen = -1, "same"
    for _ in range(20):
        now[0] += 5.0  # far past the timeout between two looks, but the marker moved every time
        assert not cycling.check()
        assert not off.check()
    assert rec.exits == [] and rec.alerts == []


def test_watchdog_timeout_shorter_than_two_cycles_is_rejected(write_config, tmp_path):
    path = write_config(extra={"orchestrator": {"check_interval": 60, "watchdog_timeout": 90}})
    with pytest.raises(ConfigError, match="watchdog_timeout"):
        load_config(path)
    assert load_config(write_config(extra={"orchestrator": {"watchdog_timeout": 0}})).orchestrator.watchdog_timeout == 0
    # Left at its default, the watchdog follows a long check_interval instead of rejecting the file.
    assert load_config(write_config(extra={"orchestrator": {"check_interval": 600}})).orchestrator.watchdog_timeout \
        == 1800


def test_real_daemon_with_a_blocked_main_loop_exits_70_with_stacks(write_config, tmp_path):
    """Hold SQLite's write lock from outside: every cycle blocks in busy_timeout and the loop stops cycling."""
    config = write_config(extra={"orchestrator": {"watchdog_timeout": 3}})
    daemon = Daemon(config).start()
    holder: sqlite3.Connection | None = None
    try:
        daemon.wait_event("daemon_started")
        db = yaml.safe_load(config.read_text())["memory"]["database_path"]
        wait_for(lambda: sqlite3.connect(db).execute("SELECT 1 FROM daemon_state WHERE key='heartbeat'").fetchone(),
                 message="first heartbeat")
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        assert daemon.wait(40) == WATCHDOG_EXIT_CODE
    finally:
        if holder is not None:
            holder.close()
        daemon.stop()
    events = [json.loads(line) for line in daemon.stdout_path.read_text().splitlines() if line.startswith("{")]
    fired = [e for e in events if e.get("event") == ALERT_NAME]
    assert len(fired) == 1 and fired[0]["alert"] is True and fired[0]["level"] == "critical"
    stacks = fired[0]["stacks"]
    # The scheduler's main-loop thread is caught waiting on the database.
    assert any("cycle" in stack for stack in stacks.values()), stacks.keys()
