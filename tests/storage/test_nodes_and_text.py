"""Node registration (both backends), hostile text through the store, and the PostgreSQL translation."""

from __future__ import annotations

import pytest

from ai_agents.cluster.nodes import NodeRegistry, resolve_node_id
from ai_agents.domain import TaskStatus, TaskType
from ai_agents.errors import FatalError
from ai_agents.memory.postgres import ddl_to_postgres, to_postgres
from ai_agents.memory.storage import Storage, redact_url
from ai_agents.memory.store import MemoryStore
from ai_agents.memory.tasks import TaskStore

HOSTILE = "x'); DROP TABLE tasks; -- %s %(x)s ? \\ \x00 nul \u202e 100% ''"


def test_hostile_text_is_stored_as_data_on_both_backends(db: Storage) -> None:
    tasks, memory = TaskStore(db), MemoryStore(db)
    task = tasks.create(TaskType.ANALYSIS, HOSTILE, HOSTILE, payload={"k": HOSTILE})
    got = tasks.get(task.id)
    assert got is not None and got.payload == {"k": HOSTILE}
    # PostgreSQL text cannot hold NUL: it becomes U+FFFD there; everything else is kept as written.
    assert got.title.replace("\ufffd", "\x00") == HOSTILE
    claimed = tasks.claim(task.id, "n:1:w", 60)
    assert claimed is not None and tasks.transition(task.id, TaskStatus.FAILED, error=HOSTILE)
    assert tasks.get(task.id).error.replace("\ufffd", "\x00") == HOSTILE  # type: ignore[union-attr]
    memory.log_activity("qa", HOSTILE, {"out": HOSTILE}, task_id=task.id)
    assert memory.activities(task.id)[0]["details"] == {"out": HOSTILE}
    assert db.query_one("SELECT COUNT(*) AS n FROM tasks") == {"n": 1}  # nothing was executed from the text


def test_nodes_register_beat_list_and_refuse_a_live_duplicate_id(db: Storage, tmp_path) -> None:
    node_id = resolve_node_id(None, tmp_path)
    assert resolve_node_id(None, tmp_path) == node_id  # generated once, kept in the data directory
    assert resolve_node_id("worker-a", tmp_path) == "worker-a"
    a = NodeRegistry(db, "worker-a", heartbeat_interval=5)
    a.register()
    a.beat({"queues": {"ceo": 1}})
    [row] = NodeRegistry.listing(db)
    assert row["id"] == "worker-a" and row["alive"] and row["details"] == {"queues": {"ceo": 1}}
    twin = NodeRegistry(db, "worker-a", heartbeat_interval=5)
    twin.host = "elsewhere"
    with pytest.raises(FatalError, match="in use by a live daemon"):
        twin.register()
    a.stopped()
    assert not NodeRegistry.listing(db)[0]["alive"]
    twin.register()  # the id is free once its daemon stopped


def test_translation_to_postgres() -> None:
    assert to_postgres("SELECT * FROM t WHERE a = ? AND b LIKE '%x?%'") == \
        "SELECT * FROM t WHERE a = %s AND b ILIKE '%%x?%%'"
    assert to_postgres("SELECT 1 FROM t ORDER BY created_at, rowid") == "SELECT 1 FROM t ORDER BY created_at, ctid"
    assert to_postgres("INSERT OR IGNORE INTO t (a) VALUES (?)") == \
        "INSERT INTO t (a) VALUES (%s) ON CONFLICT DO NOTHING"
    assert "EXTRACT(EPOCH FROM CAST(finished_at AS timestamptz))" in to_postgres("SELECT julianday(finished_at)")
    assert ddl_to_postgres("CREATE TABLE x (id INTEGER PRIMARY KEY AUTOINCREMENT, timestamp TIMESTAMP, c REAL)") == \
        "CREATE TABLE x (id BIGSERIAL PRIMARY KEY, timestamp TEXT, c DOUBLE PRECISION)"
    assert to_postgres("SELECT json_extract(payload, '$.stage') AS stage") == \
        "SELECT (CAST(payload AS jsonb) #>> '{stage}') AS stage"
    assert redact_url("postgresql://agents:s3cret@db:5432/ai") == "postgresql://agents:***@db:5432/ai"
    assert redact_url("postgresql://agents@db/ai") == "postgresql://agents@db/ai"


def test_database_url_config_is_postgres_only_and_its_password_is_a_secret(tmp_path) -> None:
    from ai_agents.config import load_config
    from ai_agents.errors import ConfigError

    cfg = tmp_path / "config.yaml"
    cfg.write_text('memory:\n  database_url: "postgresql://agents:${AI_AGENTS_DB_PASSWORD}@db:5432/ai"\n')
    settings = load_config(cfg, env={"AI_AGENTS_DB_PASSWORD": "pw-" + "Q" * 12})
    assert "pw-" + "Q" * 12 in settings.secret_values()  # scrubbed from logs, prompts and commits
    assert "pw-" not in repr(settings.memory)  # a SecretStr: never printed
    cfg.write_text('memory:\n  database_url: "mysql://x@db/ai"\n')
    with pytest.raises(ConfigError, match="database_url"):
        load_config(cfg, env={})
    cfg.write_text('memory:\n  database_url: "${UNSET_DB_URL}"\n')
    assert load_config(cfg, env={}).memory.database_url is None  # unset: SQLite
