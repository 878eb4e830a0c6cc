"""PostgreSQL backend of the store (psycopg 3): one server shared by several daemons.

A connection pool (autocommit connections, rows as dicts); each ``transaction`` is one
``BEGIN ... COMMIT`` on one pooled connection. Store code is written once with ``?``
placeholders and portable SQL; :func:`to_postgres` translates the few SQLite-isms in one
place, and :func:`ddl_to_postgres` the migrations' column types (the ``MIGRATIONS`` list in
database.py stays the single source). Timestamps stay ISO-8601 text, as in SQLite.

When the server restarts, pooled connections break: a read, a single write and the start of
a transaction are retried on a fresh connection (tenacity) for up to ``RECONNECT_SECONDS``; a
transaction that broke half-way is rolled back by the server and its error reaches the caller.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from functools import lru_cache
from typing import Any

import psycopg
import structlog
from psycopg.rows import dict_row
from psycopg.types.numeric import FloatLoader
from psycopg_pool import ConnectionPool
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from ai_agents.memory.database import MIGRATIONS
from ai_agents.memory.storage import Dialect, Params, iter_statements, redact_url

log = structlog.get_logger("ai_agents.memory")

RECONNECT_SECONDS = 60.0
MIGRATION_LOCK = 0x41494147  # pg_advisory_xact_lock key: one node migrates at a time

_QUOTED = re.compile(r"('(?:[^']|'')*')")
# Column types, written in capitals in the migrations (column names are lower case: "timestamp TIMESTAMP").
_DDL = [
    (re.compile(r"\bINTEGER\s+PRIMARY\s+KEY(\s+AUTOINCREMENT)?\b"), "BIGSERIAL PRIMARY KEY"),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
    (re.compile(r"\bTIMESTAMP\b"), "TEXT"),  # ISO-8601 text, compared as text, as in SQLite
    (re.compile(r"\bBLOB\b"), "BYTEA"),
]
_CODE = [
    (re.compile(r"\bjulianday\(([^()]*)\)", re.I), r"(EXTRACT(EPOCH FROM CAST(\1 AS timestamptz)) / 86400.0)"),
    (re.compile(r"\browid\b", re.I), "ctid"),  # insertion order as a tie-break
    (re.compile(r"(?<=\s)\+(?=[A-Za-z_])"), ""),  # SQLite's "+col" (skip an index) is not valid here
    (re.compile(r"\bLIKE\b"), "ILIKE"),  # SQLite's LIKE ignores ASCII case
]
# json_extract(col, '$.a.b') -> the same path read from the text as jsonb (before literals are set aside).
_JSON_EXTRACT = re.compile(r"\bjson_extract\(\s*([\w.]+)\s*,\s*'\$\.([\w.]+)'\s*\)", re.I)
_OR_IGNORE = re.compile(r"^\s*INSERT\s+OR\s+IGNORE\s+INTO\b", re.I)


@lru_cache(maxsize=1024)
def to_postgres(sql: str) -> str:
    """Translate store SQL (SQLite dialect, ``?`` placeholders) to PostgreSQL (``%s``)."""
    sql = _JSON_EXTRACT.sub(lambda m: f"(CAST({m[1]} AS jsonb) #>> '{{{m[2].replace('.', ',')}}}')", sql)
    out = []
    for i, part in enumerate(_QUOTED.split(sql)):
        if i % 2:  # a string literal: only escape '%' for psycopg
            out.append(part.replace("%", "%%"))
            continue
        part = part.replace("%", "%%").replace("?", "%s")
        for pattern, repl in _CODE:
            part = pattern.sub(repl, part)
        out.append(part)
    text = "".join(out)
    if _OR_IGNORE.match(text):
        text = _OR_IGNORE.sub("INSERT INTO", text, count=1) + " ON CONFLICT DO NOTHING"
    return text


def ddl_to_postgres(statement: str) -> str:
    for pattern, repl in _DDL:
        statement = pattern.sub(repl, statement)
    return to_postgres(statement).replace("%%", "%")  # DDL runs without parameters


def clean(params: Params) -> Params:
    """PostgreSQL text cannot hold NUL: a model's or a test run's stray NUL byte becomes U+FFFD, not an error."""
    if isinstance(params, Mapping):
        return {k: v.replace("\x00", "\ufffd") if isinstance(v, str) else v for k, v in params.items()}
    return [v.replace("\x00", "\ufffd") if isinstance(v, str) else v for v in params]


class _Tx:
    """The connection a transaction body sees: ``?`` SQL translated, psycopg cursors returned."""

    def __init__(self, conn: psycopg.Connection[dict[str, Any]]):
        self._conn = conn

    def execute(self, sql: str, params: Params = ()) -> psycopg.Cursor[dict[str, Any]]:
        return self._conn.execute(to_postgres(sql), clean(params))  # type: ignore[arg-type]


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.adapters.register_loader("numeric", FloatLoader)  # SUM/AVG of integers: floats, as in SQLite


class PostgresDatabase:
    """A pool of connections to one PostgreSQL database shared by every daemon of the cluster."""

    dialect: Dialect = "postgres"
    lock_rows = " FOR UPDATE"

    def __init__(self, url: str, *, pool_size: int = 8, migrate: bool = True):
        self.url = url
        self.pool: ConnectionPool[psycopg.Connection[dict[str, Any]]] = ConnectionPool(
            url, min_size=1, max_size=pool_size, open=False, configure=_configure, timeout=RECONNECT_SECONDS,
            kwargs={"autocommit": True, "row_factory": dict_row}, name="ai-agents")
        self.pool.open(wait=True, timeout=30)
        if migrate:
            self.migrate()

    def describe(self) -> str:
        return redact_url(self.url)

    def _retrying(self) -> Retrying:
        return Retrying(retry=retry_if_exception_type(psycopg.OperationalError), reraise=True,
                        stop=stop_after_delay(RECONNECT_SECONDS), wait=wait_exponential(0.1, max=2.0),
                        before_sleep=lambda state: log.warning(
                            "database_reconnecting", attempt=state.attempt_number,
                            error=str(state.outcome.exception() if state.outcome else "")[:200]))

    @contextmanager
    def transaction(self) -> Iterator[_Tx]:
        """One atomic write: BEGIN ... COMMIT on one pooled connection, or ROLLBACK on any error."""
        conn: psycopg.Connection[dict[str, Any]] | None = None
        for attempt in self._retrying():
            with attempt:
                conn = self.pool.getconn()
                try:
                    conn.execute("BEGIN")  # a broken connection fails here, before the body ran: retried
                except BaseException:
                    self.pool.putconn(conn)  # a broken one is discarded by the pool
                    raise
        assert conn is not None
        try:
            yield _Tx(conn)
        except BaseException:
            with suppress(psycopg.Error):
                conn.execute("ROLLBACK")
            self.pool.putconn(conn)
            raise
        try:
            conn.execute("COMMIT")
        finally:
            self.pool.putconn(conn)

    def query(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        for attempt in self._retrying():
            with attempt, self.pool.connection() as conn:
                return conn.execute(to_postgres(sql), clean(params)).fetchall()  # type: ignore[arg-type]
        raise AssertionError("unreachable")

    def query_one(self, sql: str, params: Params = ()) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def execute(self, sql: str, params: Params = ()) -> int:
        """One write statement (autocommit: its own transaction); rows changed."""
        for attempt in self._retrying():
            with attempt, self.pool.connection() as conn:
                return conn.execute(to_postgres(sql), clean(params)).rowcount  # type: ignore[arg-type]
        raise AssertionError("unreachable")

    def notify(self, channel: str) -> None:
        """Wake the daemons LISTENing on ``channel`` (delivered when this autocommit statement commits)."""
        self.execute("SELECT pg_notify(?, '')", (channel,))

    @property
    def schema_version(self) -> int:
        row = self.query_one("SELECT to_regclass('schema_version') IS NOT NULL AS present")
        if not row or not row["present"]:
            return 0
        row = self.query_one("SELECT version FROM schema_version")
        return int(row["version"]) if row else 0

    def migrate(self) -> None:
        """Bring the schema forward, one transaction per step; nodes starting together take turns."""
        for version in range(self.schema_version, len(MIGRATIONS)):
            with self.pool.connection() as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
                row = conn.execute("SELECT version FROM schema_version").fetchone()
                if row is None:
                    conn.execute("INSERT INTO schema_version (version) VALUES (0)")
                if row is not None and int(row["version"]) > version:
                    continue  # another node migrated meanwhile
                for statement in iter_statements(MIGRATIONS[version]):
                    conn.execute(ddl_to_postgres(statement))  # type: ignore[arg-type]
                conn.execute("UPDATE schema_version SET version = %s", (version + 1,))

    def integrity_ok(self) -> bool:
        return self.query_one("SELECT 1 AS ok") is not None

    def close(self) -> None:
        self.pool.close()
