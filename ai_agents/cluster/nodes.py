"""A daemon's stable node id and its registration: one ``nodes`` row with a heartbeat.

With SQLite the file lock keeps one daemon per database and the row is informative; with
PostgreSQL the row is how ``status`` lists the cluster (a node whose heartbeat is older than
three intervals is shown as not alive; its leases expire and other nodes resume its tasks).
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from ai_agents.domain import iso, parse_iso, utcnow
from ai_agents.errors import FatalError
from ai_agents.memory.database import dumps, loads
from ai_agents.memory.storage import Storage

NODE_ID_FILE = "node_id"


def resolve_node_id(configured: str | None, data_dir: Path) -> str:
    """``node.id`` when set, else the id generated once and kept in ``data_dir/node_id``."""
    if configured:
        return configured
    path = data_dir / NODE_ID_FILE
    if path.exists():
        value = path.read_text().strip()
        if value:
            return value
    data_dir.mkdir(parents=True, exist_ok=True)
    value = f"{socket.gethostname()[:40]}-{uuid.uuid4().hex[:8]}"
    path.write_text(value + "\n")
    return value


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class NodeRegistry:
    def __init__(self, db: Storage, node_id: str, heartbeat_interval: float):
        self.db = db
        self.node_id = node_id
        self.heartbeat_interval = heartbeat_interval
        self.host = socket.gethostname()
        self.pid = os.getpid()

    def register(self) -> None:
        """Take this node id's row; refuse when a live daemon elsewhere has the same id (copied data dir,
        a ``node.id`` set twice): two daemons under one id would recover each other's leases."""
        row = self.db.query_one("SELECT host, pid, heartbeat_at, stopped_at FROM nodes WHERE id = ?", (self.node_id,))
        if row is not None and row["stopped_at"] is None and (row["host"], row["pid"]) != (self.host, self.pid):
            beat = parse_iso(row["heartbeat_at"])
            fresh = beat is not None and beat >= utcnow() - timedelta(seconds=3 * self.heartbeat_interval)
            same_host_dead = row["host"] == self.host and not _pid_alive(int(row["pid"]))
            if fresh and not same_host_dead:
                raise FatalError(f"node id {self.node_id!r} is in use by a live daemon on {row['host']} "
                                 f"(pid {row['pid']}): give each daemon its own node.id")
        now = iso(utcnow())
        self.db.execute(
            "INSERT INTO nodes (id, host, pid, started_at, heartbeat_at, stopped_at, details) "
            "VALUES (?, ?, ?, ?, ?, NULL, '{}') ON CONFLICT(id) DO UPDATE SET host = excluded.host, "
            "pid = excluded.pid, started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, "
            "stopped_at = NULL", (self.node_id, self.host, self.pid, now, now))

    def beat(self, details: dict[str, Any] | None = None) -> None:
        self.db.execute("UPDATE nodes SET heartbeat_at = ?, details = ? WHERE id = ?",
                        (iso(utcnow()), dumps(details or {}), self.node_id))

    def stopped(self) -> None:
        self.db.execute("UPDATE nodes SET stopped_at = ?, heartbeat_at = ? WHERE id = ?",
                        (iso(utcnow()), iso(utcnow()), self.node_id))

    @staticmethod
    def listing(db: Storage, heartbeat_interval: float = 5.0) -> list[dict[str, Any]]:
        """Every node: id, host, pid, last heartbeat, alive (a beat within three intervals, not stopped)."""
        cutoff = utcnow() - timedelta(seconds=3 * heartbeat_interval)
        out = []
        for row in db.query("SELECT * FROM nodes ORDER BY id"):
            beat = parse_iso(row["heartbeat_at"])
            out.append({"id": row["id"], "host": row["host"], "pid": row["pid"], "heartbeat_at": row["heartbeat_at"],
                        "alive": row["stopped_at"] is None and beat is not None and beat >= cutoff,
                        "details": loads(row["details"]) or {}})
        return out
