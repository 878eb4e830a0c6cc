"""AlertStore: every alert the daemon raised, as a row in ``alerts`` (schema migration 5).

An alert is a log event with ``alert=True`` (the Alerter's own, test tampering, the
budget, stuck tasks, a rejected config...). ``ai_agents.ops.alerts.AlertRecorder``
writes each one here as it is logged; the dashboard and ``status`` read them back,
so they survive log rotation and do not depend on where the log file is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ai_agents.domain import iso, parse_iso, utcnow
from ai_agents.memory.database import dumps, loads
from ai_agents.memory.storage import Storage

MAX_MESSAGE_CHARS = 2000


@dataclass(frozen=True)
class StoredAlert:
    """One raised alert: its name (``alert_name``), level, message, task and the event's other fields."""

    name: str
    level: str
    message: str
    task_id: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    timestamp: datetime | None = None
    id: int | None = None


class AlertStore:
    """Insert, list, count and prune alert rows."""

    def __init__(self, db: Storage):
        self.db = db

    def add(self, alert: StoredAlert) -> None:
        self.db.execute(
            "INSERT INTO alerts (timestamp, name, level, message, task_id, fields) VALUES (?, ?, ?, ?, ?, ?)",
            (iso(alert.timestamp or utcnow()), alert.name, alert.level, alert.message[:MAX_MESSAGE_CHARS],
             alert.task_id, dumps(alert.fields)))

    def recent(self, limit: int = 10) -> list[StoredAlert]:
        """The newest ``limit`` alerts, newest first."""
        rows = self.db.query(f"SELECT * FROM alerts ORDER BY id DESC LIMIT {int(limit)}")
        return [StoredAlert(name=r["name"], level=r["level"], message=r["message"], task_id=r["task_id"],
                            fields=loads(r["fields"]) or {}, timestamp=parse_iso(r["timestamp"]), id=r["id"])
                for r in rows]

    def count_since(self, since: datetime) -> int:
        row = self.db.query_one("SELECT COUNT(*) AS n FROM alerts WHERE timestamp >= ?", (iso(since),))
        return int(row["n"]) if row else 0

    def prune(self, older_than_days: float) -> int:
        return self.db.execute("DELETE FROM alerts WHERE timestamp < ?",
                               (iso(utcnow() - timedelta(days=older_than_days)),))
