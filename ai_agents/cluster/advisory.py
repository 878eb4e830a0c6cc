"""Singleton jobs on PostgreSQL: a session-level advisory lock per job, held on a dedicated connection.

The lock is the node's while its session lives: when the node dies (or loses its connection, as
when the server restarts) the session ends, the lock is free, and the next node to ask takes it.
"""

from __future__ import annotations

import contextlib
import threading
import zlib

import psycopg
import structlog

log = structlog.get_logger("ai_agents.cluster")


def lock_key(name: str) -> int:
    return zlib.crc32(f"ai_agents:{name}".encode())


class AdvisoryLocks:
    """``pg_try_advisory_lock`` on one dedicated connection, reconnected when it breaks."""

    def __init__(self, url: str, node_id: str):
        self.url = url
        self.node_id = node_id
        self._conn: psycopg.Connection | None = None
        self._held: set[str] = set()
        self._lock = threading.Lock()

    def held(self, name: str) -> bool:
        """Is ``name`` this node's (taking it when free)? Never blocks on another node."""
        with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._held.clear()
                    self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5)
                if name in self._held:
                    self._conn.execute("SELECT 1")  # still our session? (a broken one raises)
                    return True
                row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(name),)).fetchone()
            except psycopg.Error as exc:
                log.warning("singleton_connection_lost", job=name, error=str(exc)[:200])
                self._drop()
                return False
            if row and row[0]:
                self._held.add(name)
                log.info("singleton_acquired", job=name, node=self.node_id)
                return True
            return False

    def _drop(self, release: bool = False) -> None:
        if self._conn is not None and release and self._held:
            with contextlib.suppress(psycopg.Error):  # at once: the server may take a moment to end the session
                self._conn.execute("SELECT pg_advisory_unlock_all()")
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
        self._conn = None
        self._held.clear()

    def close(self) -> None:
        with self._lock:
            self._drop(release=True)  # every lock released for the other nodes, then the session ends
