"""SQLite access shared by every thread, and the schema with forward migrations.

How it is safe from many threads at once: every thread gets its own
``sqlite3`` connection (``threading.local``); the database runs in WAL mode,
so readers never block the writer; each write is one short ``BEGIN IMMEDIATE``
transaction, so writers queue on SQLite's lock (``busy_timeout``) instead of
failing or interleaving; and nothing keeps a transaction open across a
network or LLM call.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from ai_agents.memory.storage import Dialect, Params, iter_statements

BUSY_TIMEOUT_MS = 30_000

# Each entry moves the schema from version i to i + 1. Never edit an entry that
# has shipped: append a new one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE agent_memory (
        id INTEGER PRIMARY KEY,
        agent_name TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        created_at TIMESTAMP,
        updated_at TIMESTAMP,
        UNIQUE(agent_name, key)
    );
    CREATE TABLE activity_logs (
        id INTEGER PRIMARY KEY,
        agent_name TEXT NOT NULL,
        activity TEXT NOT NULL,
        details TEXT,
        timestamp TIMESTAMP,
        task_id TEXT
    );
    CREATE INDEX idx_activity_task ON activity_logs(task_id);
    CREATE INDEX idx_activity_time ON activity_logs(timestamp);
    CREATE TABLE decision_history (
        id INTEGER PRIMARY KEY,
        agent_name TEXT NOT NULL,
        decision_type TEXT NOT NULL,
        decision_data TEXT NOT NULL,
        timestamp TIMESTAMP,
        task_id TEXT
    );
    CREATE INDEX idx_decision_task ON decision_history(task_id);
    CREATE TABLE tasks (
        id TEXT PRIMARY KEY,
        type TEXT NOT NULL,
        title TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        payload TEXT NOT NULL DEFAULT '{}',
        priority INTEGER NOT NULL DEFAULT 5,
        deadline TIMESTAMP,
        status TEXT NOT NULL,
        assigned_agent TEXT,
        parent_id TEXT REFERENCES tasks(id),
        attempts INTEGER NOT NULL DEFAULT 0,
        result TEXT,
        error TEXT,
        created_at TIMESTAMP NOT NULL,
        updated_at TIMESTAMP NOT NULL,
        started_at TIMESTAMP,
        finished_at TIMESTAMP,
        lease_owner TEXT,
        lease_expires_at TIMESTAMP,
        fingerprint TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX idx_tasks_status ON tasks(status, priority, created_at);
    CREATE INDEX idx_tasks_fingerprint ON tasks(fingerprint);
    CREATE TABLE llm_calls (
        id INTEGER PRIMARY KEY,
        timestamp TIMESTAMP NOT NULL,
        agent TEXT,
        task_id TEXT,
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        tokens_in INTEGER NOT NULL DEFAULT 0,
        tokens_out INTEGER NOT NULL DEFAULT 0,
        cost_usd REAL NOT NULL DEFAULT 0,
        price_known INTEGER NOT NULL DEFAULT 1,
        latency_ms REAL NOT NULL DEFAULT 0,
        cached INTEGER NOT NULL DEFAULT 0,
        error TEXT
    );
    CREATE INDEX idx_llm_calls_time ON llm_calls(timestamp);
    CREATE TABLE llm_cache (
        key TEXT PRIMARY KEY,
        response TEXT NOT NULL,
        created_at TIMESTAMP NOT NULL,
        expires_at TIMESTAMP NOT NULL,
        hits INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE daemon_state (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at TIMESTAMP NOT NULL
    );
    CREATE TABLE approvals (
        id INTEGER PRIMARY KEY,
        task_id TEXT NOT NULL REFERENCES tasks(id),
        action TEXT NOT NULL,
        status TEXT NOT NULL,
        details TEXT NOT NULL DEFAULT '{}',
        requested_at TIMESTAMP NOT NULL,
        decided_at TIMESTAMP,
        decided_by TEXT,
        UNIQUE(task_id, action)
    );
    """,
    # 2: fencing tokens, heartbeats and store-side queues (issue 12). ``lease_token`` counts the
    # claims of a task: every side effect of an attempt is guarded by the token it claimed with.
    # ``queue_role`` is the role whose workers take the queued task (NULL: not routed yet).
    """
    ALTER TABLE tasks ADD COLUMN lease_token INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE tasks ADD COLUMN heartbeat_at TIMESTAMP;
    ALTER TABLE tasks ADD COLUMN queue_role TEXT;
    CREATE INDEX idx_tasks_queue ON tasks(status, queue_role, priority, created_at);
    CREATE INDEX idx_tasks_deadline ON tasks(status, queue_role, deadline) WHERE deadline IS NOT NULL;
    CREATE INDEX idx_tasks_type ON tasks(type, status)
    """,
    # 3: the dashboard's paged and per-day queries (IF NOT EXISTS: safe whatever order migrations merge in).
    """
    CREATE INDEX IF NOT EXISTS idx_tasks_created ON tasks(created_at);
    CREATE INDEX IF NOT EXISTS idx_tasks_agent ON tasks(assigned_agent, status);
    CREATE INDEX IF NOT EXISTS idx_tasks_status_created ON tasks(status, created_at);
    CREATE INDEX IF NOT EXISTS idx_tasks_agent_created ON tasks(assigned_agent, created_at);
    CREATE INDEX IF NOT EXISTS idx_tasks_updated ON tasks(updated_at);
    CREATE INDEX IF NOT EXISTS idx_tasks_type_created ON tasks(type, created_at);
    CREATE INDEX IF NOT EXISTS idx_tasks_finished ON tasks(finished_at, status, created_at);
    CREATE INDEX IF NOT EXISTS idx_llm_calls_day ON llm_calls(timestamp, agent, tokens_in, tokens_out, cost_usd);
    CREATE INDEX IF NOT EXISTS idx_llm_calls_task ON llm_calls(task_id);
    CREATE INDEX IF NOT EXISTS idx_approvals_status ON approvals(status)
    """,
    # 4: the merge queue (issue 13): one row per task whose approved branch waits to become main.
    # ``candidate_sha`` is the merge commit built on ``base_sha`` (main then) and tested; a restart
    # resumes from the row and the branch's commits, and never merges a task twice.
    """
    CREATE TABLE IF NOT EXISTS merge_queue (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        task_id TEXT NOT NULL UNIQUE,
        branch TEXT NOT NULL,
        state TEXT NOT NULL,
        base_sha TEXT,
        tip_sha TEXT,
        candidate_sha TEXT,
        merged_sha TEXT,
        returns INTEGER NOT NULL DEFAULT 0,
        detail TEXT,
        test_seconds REAL,
        updated_at TIMESTAMP NOT NULL
    );
    CREATE INDEX IF NOT EXISTS idx_merge_queue_state ON merge_queue(state, id)
    """,
    # 5: alerts as rows (the dashboard and `status` read them; before, only the log file held them).
    # Portable SQL: the PostgreSQL backend translates ``INTEGER PRIMARY KEY`` like the other tables'.
    """
    CREATE TABLE IF NOT EXISTS alerts (
        id INTEGER PRIMARY KEY,
        timestamp TIMESTAMP NOT NULL,
        name TEXT NOT NULL,
        level TEXT NOT NULL,
        message TEXT NOT NULL DEFAULT '',
        task_id TEXT,
        fields TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX IF NOT EXISTS idx_alerts_time ON alerts(timestamp)
    """,
    # (hP, issue 17) the daemons of a cluster: one row per node id, its heartbeat and where it runs
    # (IF NOT EXISTS: safe whatever order migrations merge in).
    """
    CREATE TABLE IF NOT EXISTS nodes (
        id TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_at TIMESTAMP NOT NULL,
        heartbeat_at TIMESTAMP NOT NULL,
        stopped_at TIMESTAMP,
        details TEXT NOT NULL DEFAULT '{}'
    )
    """,
]


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class Database:
    """A SQLite file shared by threads: one connection per thread, WAL, short write transactions."""

    dialect: Dialect = "sqlite"
    lock_rows = ""  # BEGIN IMMEDIATE already holds the write lock for the whole transaction

    def __init__(self, path: Path | str):
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._all: dict[int, tuple[threading.Thread, sqlite3.Connection]] = {}
        self._all_lock = threading.Lock()
        self.migrate()

    def connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                   check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            self._local.conn = conn
            with self._all_lock:
                # Close the connections of threads that have ended (replaced workers, pool threads),
                # so a long-running daemon does not accumulate file descriptors.
                for ident, (thread, old) in list(self._all.items()):
                    if not thread.is_alive():
                        with contextlib.suppress(sqlite3.Error):
                            old.close()
                        del self._all[ident]
                current = threading.current_thread()
                self._all[id(current)] = (current, conn)
        return conn

    def utils(self) -> sqlite_utils.Database:
        """A sqlite-utils view over this thread's connection (reads and introspection)."""
        db = getattr(self._local, "utils", None)
        if db is None:
            db = self._local.utils = sqlite_utils.Database(self.connection())
        return db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error."""
        conn = self.connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def query(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self.connection().execute(sql, params).fetchall()]

    def query_one(self, sql: str, params: Params = ()) -> dict[str, Any] | None:
        row = self.connection().execute(sql, params).fetchone()
        return dict(row) if row else None

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one write statement in its own transaction; return rows changed."""
        with self.transaction() as conn:
            return conn.execute(sql, params).rowcount

    @property
    def schema_version(self) -> int:
        return int(self.connection().execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> None:
        """Bring the schema forward to the newest version, one transaction per step."""
        conn = self.connection()
        for version in range(self.schema_version, len(MIGRATIONS)):
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Re-check under the lock: another process may have migrated meanwhile.
                if int(conn.execute("PRAGMA user_version").fetchone()[0]) > version:
                    conn.execute("ROLLBACK")
                    continue
                for statement in iter_statements(MIGRATIONS[version]):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {version + 1}")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def notify(self, channel: str) -> None:
        """Nothing to wake: one daemon per SQLite file, and its dispatcher polls."""

    def describe(self) -> str:
        return str(self.path)

    def integrity_ok(self) -> bool:
        return self.connection().execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    def close(self) -> None:
        with self._all_lock:
            for _, conn in self._all.values():
                with contextlib.suppress(sqlite3.Error):  # a finished thread's connection: nothing to save
                    conn.close()
            self._all.clear()
        self._local = threading.local()
