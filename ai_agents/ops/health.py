"""Is the daemon alive and working? Judged from the heartbeat it writes to SQLite.

The heartbeat row is the only input, so ``health`` works from any process that
can read the database (the CLI, Docker's HEALTHCHECK, a cron job) and needs no
connection to the daemon itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ai_agents.domain import parse_iso, utcnow
from ai_agents.memory.store import MemoryStore

HEARTBEAT_KEY = "heartbeat"
MIN_STALE_SECONDS = 15.0
STUCK_GRACE_SECONDS = 120.0
# Used only when an old or partial heartbeat lacks the intervals.
DEFAULT_HEARTBEAT_INTERVAL = 5.0
DEFAULT_CHECK_INTERVAL = 60.0


@dataclass
class HealthReport:
    """``ok`` and one line saying why; ``data`` holds the figures behind it."""

    ok: bool
    reason: str
    data: dict[str, Any] = field(default_factory=dict)


def stale_after(heartbeat_interval: float) -> float:
    """A heartbeat older than this means the daemon is gone or hung."""
    return max(3 * heartbeat_interval, MIN_STALE_SECONDS)


def stuck_after(check_interval: float) -> float:
    """A main loop that has not finished a cycle for this long is stuck.

    Three missed cycles, but never less than one cycle plus two minutes: a cycle
    may legitimately spend a while on the CEO's LLM call or a git pull.
    """
    return max(3 * check_interval, check_interval + STUCK_GRACE_SECONDS)


def _aware(dt: datetime | None) -> datetime | None:
    if dt is not None and dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)  # every timestamp we write is UTC
    return dt


def _time(value: Any) -> datetime | None:
    return _aware(parse_iso(value)) if isinstance(value, str) and value else None


def human_age(seconds: float) -> str:
    """'42 s', '12 min', '3.5 h', '2.0 d': short enough for one health line."""
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _unhealthy(raw: Any) -> list[tuple[str, str]]:
    """``unhealthy_roles`` as (role, why): accepts ["developer"], {"developer": "why"}
    or [{"role": "developer", "reason": "why"}] so the orchestrator can add detail later."""
    default = "its workers were restarted too often in the last hour (see the worker_restarted alerts)"
    if isinstance(raw, dict):
        return [(str(role), str(why or default)) for role, why in raw.items()]
    out = []
    for item in raw or []:
        if isinstance(item, dict):
            out.append((str(item.get("role", "?")), str(item.get("reason") or default)))
        else:
            out.append((str(item), default))
    return out


def assess_heartbeat(value: Any, updated_at: datetime | None, now: datetime, *,
                     check_roles: bool = True) -> HealthReport:
    """Judge one heartbeat (pure: no I/O).

    The daemon itself may call this with ``updated_at=now`` and
    ``check_roles=False`` before each ``WATCHDOG=1`` ping, so systemd kills a
    process whose main loop is stuck even though its heartbeat thread still runs.
    """
    if value is None or updated_at is None:
        return HealthReport(False, "no heartbeat: the daemon has never run with this database")
    if not isinstance(value, dict):
        return HealthReport(False, f"heartbeat unreadable: expected an object, found {type(value).__name__}")
    now = _aware(now) or utcnow()
    age = (now - _aware(updated_at)).total_seconds()  # type: ignore[operator]
    hb_interval = float(value.get("heartbeat_interval") or DEFAULT_HEARTBEAT_INTERVAL)
    check_interval = float(value.get("check_interval") or DEFAULT_CHECK_INTERVAL)
    data: dict[str, Any] = {
        "pid": value.get("pid"), "heartbeat_age_seconds": round(age, 3), "paused": bool(value.get("paused")),
        "stale_after_seconds": stale_after(hb_interval), "stuck_after_seconds": stuck_after(check_interval),
        "queues": value.get("queues") or {}, "current_tasks": value.get("current_tasks") or {},
    }
    stopped_at = value.get("stopped_at")
    if stopped_at:
        return HealthReport(False, f"daemon stopped cleanly at {stopped_at}", data)
    if age >= stale_after(hb_interval):
        return HealthReport(False, f"heartbeat {human_age(age)} old: the daemon is not running or hung", data)

    loop_at, started_at = _time(value.get("loop_at")), _time(value.get("started_at"))
    limit = stuck_after(check_interval)
    if loop_at is not None:
        loop_age = (now - loop_at).total_seconds()
        data["loop_age_seconds"] = round(loop_age, 3)
        if loop_age >= limit:
            return HealthReport(False, f"main loop stuck: last cycle {human_age(loop_age)} ago", data)
    else:
        up = (now - started_at).total_seconds() if started_at else None
        if up is None or up >= limit:
            since = f"since start {human_age(up)} ago" if up is not None else "and no start time recorded"
            return HealthReport(False, f"main loop stuck: no cycle finished {since}", data)

    if check_roles:
        bad = _unhealthy(value.get("unhealthy_roles"))
        if bad:
            data["unhealthy_roles"] = [role for role, _ in bad]
            role, why = bad[0]
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            return HealthReport(False, f"role {role} unhealthy: {why}{more}", data)

    busy = sum(1 for t in data["current_tasks"].values() if t)
    state = "paused" if data["paused"] else "running"
    # No "ok:" prefix: the CLI prints "healthy: " + reason.
    return HealthReport(True, f"{state}, pid {value.get('pid')}, {busy} task(s) in progress, "
                              f"heartbeat {human_age(age)} old", data)


def check_health(memory: MemoryStore, now: datetime | None = None) -> HealthReport:
    """Read the heartbeat row and judge it. The CLI prints ``reason`` and exits 0 when ``ok``."""
    value, updated_at = memory.get_state(HEARTBEAT_KEY)
    return assess_heartbeat(value, updated_at, now or utcnow())
