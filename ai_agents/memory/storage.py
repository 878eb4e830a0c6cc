"""The storage contract every store module is written against (the backend is picked in ``backends.py``).

Two implementations: :class:`~ai_agents.memory.database.Database` (a SQLite file, the default and
zero-setup path, one daemon) and :class:`~ai_agents.memory.postgres.PostgresDatabase` (one
PostgreSQL shared by several daemons). Store code writes portable SQL with ``?`` placeholders
(``ON CONFLICT ... DO``, ISO-8601 text timestamps); the PostgreSQL backend translates the few
dialect differences in one function (``postgres.to_postgres``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

Params = Sequence[Any] | Mapping[str, Any]
Dialect = Literal["sqlite", "postgres"]


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """What a transaction hands its body: ``execute`` with ``?`` placeholders; rows read by column name."""

    def execute(self, sql: str, params: Params = ()) -> Cursor: ...


class Storage(Protocol):
    """The shared store (and queue) of the daemon."""

    dialect: Dialect
    lock_rows: str  # appended to a SELECT inside a transaction to lock the rows read ("" on SQLite)

    def transaction(self) -> AbstractContextManager[Connection]: ...

    def query(self, sql: str, params: Params = ()) -> list[dict[str, Any]]: ...

    def query_one(self, sql: str, params: Params = ()) -> dict[str, Any] | None: ...

    def execute(self, sql: str, params: Params = ()) -> int: ...

    @property
    def schema_version(self) -> int: ...

    def migrate(self) -> None: ...

    def integrity_ok(self) -> bool: ...

    def notify(self, channel: str) -> None: ...

    def describe(self) -> str: ...

    def close(self) -> None: ...


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for logs, status and doctor)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def iter_statements(script: str) -> Iterator[str]:
    """The statements of a migration entry (split on ``;``; no entry has one inside a literal)."""
    for statement in script.split(";"):
        if statement.strip():
            yield statement
