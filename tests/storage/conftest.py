"""The storage suite runs every test against both backends: a SQLite file and a PostgreSQL database.

``db`` is one handle; ``second_db`` is another handle on the SAME store (another daemon: a second
connection pool on the same PostgreSQL database, a second connection set on the same SQLite file).
Without the PostgreSQL binaries the postgres cases skip, saying so (tests/pg.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ai_agents.memory.database import Database
from ai_agents.memory.storage import Storage


@pytest.fixture(params=["sqlite", "postgres"])
def open_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Storage]]:
    """Opens handles on one fresh store of the parametrised backend (each handle: one "daemon")."""
    opened: list[Storage] = []
    if request.param == "postgres":
        from ai_agents.memory.postgres import PostgresDatabase
        from tests.pg import server_or_skip

        url = server_or_skip(request).new_database("storage")

        def opener() -> Storage:
            opened.append(PostgresDatabase(url, pool_size=4))
            return opened[-1]
    else:
        def opener() -> Storage:
            opened.append(Database(tmp_path / "agents.db"))
            return opened[-1]
    yield opener
    for handle in opened:
        handle.close()


@pytest.fixture
def db(open_db: Callable[[], Storage]) -> Storage:
    return open_db()


@pytest.fixture
def second_db(db: Storage, open_db: Callable[[], Storage]) -> Storage:
    return open_db()
