"""Prometheus metrics, computed from SQLite on every scrape so they survive restarts.

``collect_metrics`` gathers figures into a plain dict (also usable by a
``status`` command); ``StoreCollector`` turns it into ``prometheus_client``
metric families, and the library writes the exposition (text 0.0.4 or
OpenMetrics); ``MetricsServer`` (in ``metrics_server``, re-exported here) serves
it on ``/metrics``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, time
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.registry import Collector

from ai_agents.domain import TaskStatus, iso, parse_iso, utcnow
from ai_agents.memory.storage import Storage
from ai_agents.memory.store import MemoryStore
from ai_agents.memory.tasks import TaskStore
from ai_agents.ops.health import HEARTBEAT_KEY, HealthReport, assess_heartbeat
from ai_agents.ops.metrics_server import CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE, MetricsServer, parse_listen

__all__ = ["CONTENT_TYPE", "OPENMETRICS_CONTENT_TYPE", "MetricsServer", "StoreCollector", "collect_metrics",
           "metric_families", "parse_listen", "quantile", "render_openmetrics", "render_prometheus"]

# Tasks that ended badly: they count as errors and against the success rate.
BAD_STATUSES = (TaskStatus.FAILED.value, TaskStatus.ESCALATED.value)


def quantile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); list must be sorted, non-empty."""
    pos = (len(sorted_values) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def _durations(db: Storage) -> list[float]:
    rows = db.query("SELECT started_at, finished_at FROM tasks "
                    "WHERE started_at IS NOT NULL AND finished_at IS NOT NULL")
    out = []
    for r in rows:
        start, end = parse_iso(r["started_at"]), parse_iso(r["finished_at"])
        if start and end and end >= start:  # a clock step backwards would give nonsense
            out.append((end - start).total_seconds())
    return sorted(out)


def collect_metrics(db: Storage, memory: MemoryStore, tasks: TaskStore,
                    queue_depths: dict[str, int] | None = None, *, now: datetime | None = None,
                    alerts_not_stored: Mapping[str, int] | None = None,
                    alert_webhook: Mapping[str, int] | None = None) -> dict[str, Any]:
    """Every figure the daemon exports. ``queue_depths`` defaults to the heartbeat's ``queues``;
    ``alerts_not_stored`` is the running daemon's ``AlertRecorder.not_stored()`` and ``alert_webhook`` its
    ``Alerter.webhook_counts()`` (each left out without one)."""
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
        "alerts_not_stored": dict(alerts_not_stored) if alerts_not_stored is not None else None,
        "alert_webhook": dict(alert_webhook) if alert_webhook is not None else None,
        "collected_at": iso(now),
    }


class StoreCollector(Collector):
    """A ``prometheus_client`` collector whose every scrape reads the figures from SQLite.

    ``read`` returns :func:`collect_metrics`' dict. Family names are unique across
    types (OpenMetrics forbids a counter ``x`` beside a gauge ``x``): the counter of
    finished tasks is ``ai_agents_tasks_total`` and the gauge of tasks per status is
    ``ai_agents_tasks_by_status``.
    """

    def __init__(self, read: Callable[[], dict[str, Any]]):
        self._read = read

    def collect(self) -> Iterator[Metric]:
        yield from metric_families(self._read())


def metric_families(m: dict[str, Any]) -> Iterator[Metric]:
    """The families of one :func:`collect_metrics` dict; a figure not known yet is left out, not invented."""
    by_status = m["tasks_by_status"]
    done = CounterMetricFamily("ai_agents_tasks", "Tasks that reached a final status, by status.", labels=["status"])
    for status in ("completed", "failed", "cancelled", "escalated"):
        done.add_metric([status], by_status.get(status, 0))
    yield done
    now = GaugeMetricFamily("ai_agents_tasks_by_status", "Tasks currently in each status.", labels=["status"])
    for status, n in sorted(by_status.items()):
        now.add_metric([status], n)
    yield now
    if m["success_rate"] is not None:
        yield GaugeMetricFamily("ai_agents_task_success_ratio",
                                "completed / (completed + failed + escalated) over all tasks.", value=m["success_rate"])
    d = m["task_duration_seconds"]
    if d["count"]:
        # prometheus_client's SummaryMetricFamily has no quantiles; the generic Metric takes them as samples.
        duration = Metric("ai_agents_task_duration_seconds", "Seconds from claim to finish of finished tasks.",
                          "summary")
        duration.add_sample("ai_agents_task_duration_seconds", {"quantile": "0.5"}, d["p50"])
        duration.add_sample("ai_agents_task_duration_seconds", {"quantile": "0.95"}, d["p95"])
        duration.add_sample("ai_agents_task_duration_seconds_sum", {}, d["sum"])
        duration.add_sample("ai_agents_task_duration_seconds_count", {}, d["count"])
        yield duration
    errors = CounterMetricFamily("ai_agents_errors", "Failed or escalated tasks and LLM calls that ended in an error.",
                                 labels=["source"])
    errors.add_metric(["task"], m["errors"]["tasks"])
    errors.add_metric(["llm"], m["errors"]["llm_calls"])
    yield errors
    llm = m["llm"]
    yield CounterMetricFamily("ai_agents_llm_calls", "LLM calls, including ones served from the cache.",
                              value=llm["calls"])
    yield CounterMetricFamily("ai_agents_llm_cache_hits", "LLM calls answered from the response cache.",
                              value=llm["cache_hits"])
    tokens = CounterMetricFamily("ai_agents_llm_tokens", "LLM tokens, by direction.", labels=["direction"])
    tokens.add_metric(["input"], llm["tokens_in"])
    tokens.add_metric(["output"], llm["tokens_out"])
    yield tokens
    yield CounterMetricFamily("ai_agents_llm_cost_usd", "Estimated LLM spend in US dollars.", value=llm["cost_usd"])
    yield GaugeMetricFamily("ai_agents_llm_tokens_today", "LLM tokens since midnight UTC.", value=llm["tokens_today"])
    yield GaugeMetricFamily("ai_agents_llm_cost_usd_today", "Estimated LLM spend since midnight UTC.",
                            value=llm["cost_usd_today"])
    queues = GaugeMetricFamily("ai_agents_queue_depth", "Queued tasks waiting for each role.", labels=["role"])
    for role, n in sorted(m["queue_depth"].items()):
        queues.add_metric([role], n)
    yield queues
    yield GaugeMetricFamily("ai_agents_healthy", "1 when the health check passes (heartbeat, main loop, roles).",
                            value=1 if m["healthy"] else 0)
    # The running daemon's own counts (left out without one), one sample per label value.
    for key, name, label, text in (
            ("alerts_not_stored", "ai_agents_alerts_not_stored", "reason",
             "Alerts logged but never written to the alerts table since the daemon started, by reason: dropped "
             "(the recorder's queue was full) or failed (the write failed)."),
            ("alert_webhook", "ai_agents_alert_webhook_deliveries", "outcome",
             "Alerts sent to alerts.webhook_url since the daemon started, by outcome: delivered, failed (retries "
             "spent or a client error) or dropped (the send queue was full).")):
        if m.get(key) is not None:
            counts = CounterMetricFamily(name, text, labels=[label])
            for value, n in sorted(m[key].items()):
                counts.add_metric([value], n)
            yield counts
    if m["heartbeat_age_seconds"] is not None:
        yield GaugeMetricFamily("ai_agents_heartbeat_age_seconds", "Seconds since the daemon's last heartbeat.",
                                value=m["heartbeat_age_seconds"])


def _registry(m: dict[str, Any]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(lambda: m))
    return registry


def render_prometheus(m: dict[str, Any]) -> str:
    """Prometheus text exposition format 0.0.4 of :func:`collect_metrics`' dict (``prometheus_client``'s)."""
    return generate_latest(_registry(m)).decode()


def render_openmetrics(m: dict[str, Any]) -> str:
    """The same figures in OpenMetrics 1.0 text (what Prometheus asks for first)."""
    return generate_openmetrics(_registry(m)).decode()
