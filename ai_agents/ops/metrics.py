"""Prometheus metrics, computed from SQLite on every scrape so they survive restarts.

``collect_metrics`` gathers figures into a plain dict (also usable by a
``status`` command); ``render_prometheus`` writes text exposition format 0.0.4;
``MetricsServer`` (in ``metrics_server``, re-exported here) serves it on ``/metrics``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, time
from typing import Any

from ai_agents.domain import TaskStatus, iso, parse_iso, utcnow
from ai_agents.memory.database import Database
from ai_agents.memory.store import MemoryStore
from ai_agents.memory.tasks import TaskStore
from ai_agents.ops.health import HEARTBEAT_KEY, HealthReport, assess_heartbeat
from ai_agents.ops.metrics_server import CONTENT_TYPE, MetricsServer, parse_listen

__all__ = ["CONTENT_TYPE", "MetricsServer", "collect_metrics", "parse_listen", "quantile", "render_prometheus"]

# Tasks that ended badly: they count as errors and against the success rate.
BAD_STATUSES = (TaskStatus.FAILED.value, TaskStatus.ESCALATED.value)


def quantile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); list must be sorted, non-empty."""
    pos = (len(sorted_values) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def _durations(db: Database) -> list[float]:
    rows = db.query("SELECT started_at, finished_at FROM tasks "
                    "WHERE started_at IS NOT NULL AND finished_at IS NOT NULL")
    out = []
    for r in rows:
        start, end = parse_iso(r["started_at"]), parse_iso(r["finished_at"])
        if start and end and end >= start:  # a clock step backwards would give nonsense
            out.append((end - start).total_seconds())
    return sorted(out)


def collect_metrics(db: Database, memory: MemoryStore, tasks: TaskStore,
                    queue_depths: dict[str, int] | None = None, *, now: datetime | None = None) -> dict[str, Any]:
    """Every figure the daemon exports. ``queue_depths`` defaults to the heartbeat's ``queues``."""
    now = now or utcnow()
    by_status = {s.value: 0 for s in TaskStatus} | tasks.counts()
    completed = by_status.get(TaskStatus.COMPLETED.value, 0)
    bad = sum(by_status.get(s, 0) for s in BAD_STATUSES)

    durations = _durations(db)
    duration: dict[str, Any] = {"count": len(durations), "sum": sum(durations)}
    if durations:
        duration |= {"avg": duration["sum"] / len(durations), "p50": quantile(durations, 0.5),
                     "p95": quantile(durations, 0.95)}

    llm = db.query_one(
        "SELECT COUNT(*) AS calls, COALESCE(SUM(cached), 0) AS cached, "
        "COALESCE(SUM(CASE WHEN error IS NOT NULL THEN 1 ELSE 0 END), 0) AS errors, "
        "COALESCE(SUM(tokens_in), 0) AS tokens_in, COALESCE(SUM(tokens_out), 0) AS tokens_out, "
        "COALESCE(SUM(cost_usd), 0) AS cost_usd FROM llm_calls") or {}
    midnight = datetime.combine(now.astimezone(UTC).date(), time(0), tzinfo=UTC)
    today = memory.usage_since(midnight)

    heartbeat, beat_at = memory.get_state(HEARTBEAT_KEY)
    if queue_depths is None:
        queues = heartbeat.get("queues") if isinstance(heartbeat, dict) else None
        queue_depths = {str(k): int(v) for k, v in (queues or {}).items()}
    health: HealthReport = assess_heartbeat(heartbeat, beat_at, now)

    return {
        "tasks_by_status": by_status,
        "tasks_completed": completed,
        "tasks_failed": by_status.get(TaskStatus.FAILED.value, 0),
        "success_rate": completed / (completed + bad) if completed + bad else None,
        "task_duration_seconds": duration,
        "errors": {"tasks": bad, "llm_calls": int(llm.get("errors", 0))},
        "error_count": bad + int(llm.get("errors", 0)),
        "llm": {
            "calls": int(llm.get("calls", 0)), "cache_hits": int(llm.get("cached", 0)),
            "tokens_in": int(llm.get("tokens_in", 0)), "tokens_out": int(llm.get("tokens_out", 0)),
            "cost_usd": float(llm.get("cost_usd", 0.0)),
            "calls_today": today["calls"], "tokens_today": today["tokens"], "cost_usd_today": today["cost_usd"],
        },
        "queue_depth": queue_depths,
        "healthy": health.ok,
        "heartbeat_age_seconds": health.data.get("heartbeat_age_seconds"),
        "collected_at": iso(now),
    }


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float | int | bool) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


class _Exposition:
    """Builds the text format: one HELP and TYPE per family, then its samples."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str,
               samples: list[tuple[dict[str, str], float | int | bool | None]], suffix: str = "") -> None:
        samples = [(labels, v) for labels, v in samples if v is not None]
        if not samples:
            return  # no value known (e.g. no finished task yet): omit rather than invent one
        self.lines.append(f"# HELP {name} {help_text.replace(chr(92), chr(92) * 2)}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            self.sample(name + suffix, labels, value)  # type: ignore[arg-type]

    def sample(self, name: str, labels: dict[str, str], value: float | int | bool) -> None:
        text = ",".join(f'{k}="{_escape_label(str(v))}"' for k, v in labels.items())
        self.lines.append(f"{name}{{{text}}} {_number(value)}" if text else f"{name} {_number(value)}")


def render_prometheus(m: dict[str, Any]) -> str:
    """Prometheus text exposition format 0.0.4 of :func:`collect_metrics`' dict."""
    out = _Exposition()
    by_status = m["tasks_by_status"]
    final = ("completed", "failed", "cancelled", "escalated")
    out.family("ai_agents_tasks_total", "counter", "Tasks that reached a final status, by status.",
               [({"status": s}, by_status.get(s, 0)) for s in final])
    out.family("ai_agents_tasks", "gauge", "Tasks currently in each status.",
               [({"status": s}, n) for s, n in sorted(by_status.items())])
    out.family("ai_agents_task_success_ratio", "gauge",
               "completed / (completed + failed + escalated) over all tasks.", [({}, m["success_rate"])])
    d = m["task_duration_seconds"]
    if d["count"]:
        out.family("ai_agents_task_duration_seconds", "summary", "Seconds from claim to finish of finished tasks.",
                   [({"quantile": "0.5"}, d["p50"]), ({"quantile": "0.95"}, d["p95"])])
        out.sample("ai_agents_task_duration_seconds_sum", {}, d["sum"])
        out.sample("ai_agents_task_duration_seconds_count", {}, d["count"])
    out.family("ai_agents_errors_total", "counter", "Failed or escalated tasks and LLM calls that ended in an error.",
               [({"source": "task"}, m["errors"]["tasks"]), ({"source": "llm"}, m["errors"]["llm_calls"])])
    llm = m["llm"]
    out.family("ai_agents_llm_calls_total", "counter", "LLM calls, including ones served from the cache.",
               [({}, llm["calls"])])
    out.family("ai_agents_llm_cache_hits_total", "counter", "LLM calls answered from the response cache.",
               [({}, llm["cache_hits"])])
    out.family("ai_agents_llm_tokens_total", "counter", "LLM tokens, by direction.",
               [({"direction": "input"}, llm["tokens_in"]), ({"direction": "output"}, llm["tokens_out"])])
    out.family("ai_agents_llm_cost_usd_total", "counter", "Estimated LLM spend in US dollars.", [({}, llm["cost_usd"])])
    out.family("ai_agents_llm_tokens_today", "gauge", "LLM tokens since midnight UTC.", [({}, llm["tokens_today"])])
    out.family("ai_agents_llm_cost_usd_today", "gauge", "Estimated LLM spend since midnight UTC.",
               [({}, llm["cost_usd_today"])])
    out.family("ai_agents_queue_depth", "gauge", "Queued tasks waiting for each role.",
               [({"role": r}, n) for r, n in sorted(m["queue_depth"].items())])
    out.family("ai_agents_healthy", "gauge", "1 when the health check passes (heartbeat, main loop, roles).",
               [({}, m["healthy"])])
    out.family("ai_agents_heartbeat_age_seconds", "gauge", "Seconds since the daemon's last heartbeat.",
               [({}, m["heartbeat_age_seconds"])])
    return "\n".join(out.lines) + "\n"
