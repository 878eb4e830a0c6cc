"""check_health against a real SQLite database holding the orchestrator's heartbeat row."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ai_agents.domain import iso, utcnow
from ai_agents.memory.database import Database
from ai_agents.memory.store import MemoryStore
from ai_agents.ops.health import assess_heartbeat, check_health


@pytest.fixture
def memory(tmp_path):
    db = Database(tmp_path / "ai_agents.db")
    yield MemoryStore(db)
    db.close()


def beat(memory: MemoryStore, **overrides):
    """Write a heartbeat as the orchestrator does; return the time it was written."""
    now = utcnow()
    value = {"pid": 4242, "started_at": iso(now - timedelta(hours=1)), "loop_at": iso(now - timedelta(seconds=20)),
             "check_interval": 60.0, "heartbeat_interval": 5.0, "paused": False, "queues": {"developer": 2},
             "current_tasks": {"developer-1": "abc123", "qa-1": None}, "unhealthy_roles": [], "stopped_at": None}
    value.update(overrides)
    memory.set_state("heartbeat", value)
    return now


def test_no_heartbeat(memory):
    report = check_health(memory)
    assert not report.ok
    assert report.reason == "no heartbeat: the daemon has never run with this database"


def test_fresh_heartbeat_is_ok(memory):
    beat(memory)
    report = check_health(memory)
    assert report.ok, report.reason
    assert report.reason.startswith("running, pid 4242, 1 task(s) in progress, heartbeat ")
    assert report.data["queues"] == {"developer": 2}


def test_paused_daemon_is_still_healthy(memory):
    beat(memory, paused=True)
    report = check_health(memory)
    assert report.ok and report.reason.startswith("paused, pid 4242")


def test_stale_heartbeat(memory):
    written = beat(memory)
    report = check_health(memory, now=written + timedelta(seconds=42))
    assert not report.ok
    assert report.reason == "heartbeat 42 s old: the daemon is not running or hung"


def test_staleness_threshold_follows_the_heartbeat_interval(memory):
    written = beat(memory, heartbeat_interval=10.0, loop_at=None, started_at=iso(utcnow()))
    assert check_health(memory, now=written + timedelta(seconds=29)).ok  # 3 x 10 s
    assert not check_health(memory, now=written + timedelta(seconds=31)).ok
    written = beat(memory, heartbeat_interval=1.0)
    assert check_health(memory, now=written + timedelta(seconds=14)).ok  # floor of 15 s
    assert not check_health(memory, now=written + timedelta(seconds=16)).ok


def test_stuck_main_loop(memory):
    beat(memory, loop_at=iso(utcnow() - timedelta(minutes=12)))
    report = check_health(memory)
    assert not report.ok
    assert report.reason == "main loop stuck: last cycle 12 min ago"


def test_stuck_threshold_is_one_cycle_plus_two_minutes_for_short_intervals(memory):
    # check_interval 10 s: 3 x 10 = 30 s would be too eager; 10 + 120 = 130 s applies.
    beat(memory, check_interval=10.0, loop_at=iso(utcnow() - timedelta(seconds=100)))
    assert check_health(memory).ok
    beat(memory, check_interval=10.0, loop_at=iso(utcnow() - timedelta(seconds=140)))
    assert not check_health(memory).ok


def test_no_cycle_yet_is_fine_only_shortly_after_start(memory):
    beat(memory, loop_at=None, started_at=iso(utcnow() - timedelta(seconds=30)))
    assert check_health(memory).ok
    beat(memory, loop_at=None, started_at=iso(utcnow() - timedelta(minutes=10)))
    report = check_health(memory)
    assert not report.ok
    assert report.reason == "main loop stuck: no cycle finished since start 10 min ago"


def test_unhealthy_role(memory):
    beat(memory, unhealthy_roles=["developer"])
    report = check_health(memory)
    assert not report.ok
    assert report.reason.startswith("role developer unhealthy: ")
    beat(memory, unhealthy_roles={"developer": "worker restarted 5 times in the last hour", "qa": ""})
    report = check_health(memory)
    assert report.reason == "role developer unhealthy: worker restarted 5 times in the last hour (and 1 more)"
    assert report.data["unhealthy_roles"] == ["developer", "qa"]


def test_watchdog_view_ignores_roles_but_not_a_stuck_loop(memory):
    written = beat(memory, unhealthy_roles=["qa"])
    value, updated_at = memory.get_state("heartbeat")
    assert assess_heartbeat(value, updated_at, written, check_roles=False).ok
    value["loop_at"] = iso(written - timedelta(hours=2))
    assert not assess_heartbeat(value, written, written, check_roles=False).ok


def test_stopped_cleanly(memory):
    stopped = iso(utcnow())
    beat(memory, stopped_at=stopped)
    report = check_health(memory)
    assert not report.ok
    assert report.reason == f"daemon stopped cleanly at {stopped}"


def test_garbage_heartbeat(memory):
    memory.set_state("heartbeat", ["not", "a", "dict"])
    report = check_health(memory)
    assert not report.ok and report.reason.startswith("heartbeat unreadable")
