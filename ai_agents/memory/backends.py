"""Which store the configuration names: the SQLite file (the default) or the cluster's PostgreSQL.

Above both backends (:mod:`ai_agents.memory.database`, :mod:`ai_agents.memory.postgres`), which
meet the :class:`~ai_agents.memory.storage.Storage` contract below them.
"""

from __future__ import annotations

from pathlib import Path

from ai_agents.config.models import MemoryConfig
from ai_agents.memory.database import Database
from ai_agents.memory.storage import Storage


def open_storage(database_path: Path, database_url: str | None = None, *, pool_size: int = 8) -> Storage:
    """PostgreSQL when ``database_url`` is set, else the SQLite file at ``database_path``."""
    if database_url:
        from ai_agents.memory.postgres import PostgresDatabase  # psycopg is loaded only for PostgreSQL

        return PostgresDatabase(database_url, pool_size=pool_size)
    return Database(database_path)


def from_config(memory: MemoryConfig) -> Storage:
    """The store ``memory`` configures (``database_url``: PostgreSQL; else the SQLite file)."""
    url = memory.database_url.get_secret_value() if memory.database_url is not None else None
    return open_storage(memory.database_path, url, pool_size=memory.pool_size)
