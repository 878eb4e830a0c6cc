"""SQLite memory: the specification's tables, the UNIQUE upsert, tasks, many threads at once."""

from __future__ import annotations

import threading

from ai_agents.domain import TaskStatus
from ai_agents.memory import Database, MemoryStore, TaskStore
from ai_agents.memory.database import MIGRATIONS


def test_schema_tables_and_version(tmp_path):
    db = Database(tmp_path / "m.db")
    tables = set(db.utils().table_names())
    assert {"agent_memory", "activity_logs", "decision_history", "tasks", "llm_calls"} <= tables
    assert db.schema_version == len(MIGRATIONS)
    cols = set(db.utils()["agent_memory"].columns_dict)
    assert cols >= {"id", "agent_name", "key", "value", "created_at", "updated_at"}
    assert db.query_one("PRAGMA journal_mode")["journal_mode"] == "wal"
    # reopening migrates nothing twice
    db.close()
    assert Database(tmp_path / "m.db").schema_version == len(MIGRATIONS)


def test_agent_memory_unique_upsert_and_json_roundtrip(tmp_path):
    store = MemoryStore(Database(tmp_path / "m.db"))
    store.remember("ceo", "plan", {"steps": [1, 2], "note": "ünïcode"})
    store.remember("ceo", "plan", {"steps": [3]})
    store.remember("cfo", "plan", None)
    assert store.recall("ceo", "plan") == {"steps": [3]}
    assert store.recall("cfo", "plan") is None
    rows = store.db.query("SELECT * FROM agent_memory WHERE agent_name = 'ceo'")
    assert len(rows) == 1


def test_activity_and_decisions(tmp_path):
    store = MemoryStore(Database(tmp_path / "m.db"))
    store.log_activity("qa", "tests_written", {"count": 3}, task_id="t1")
    store.record_decision("ceo", "decision", {"approve": True, "summary": "ok"}, task_id="t1")
    assert store.activities("t1")[0]["details"] == {"count": 3}
    assert store.decisions("t1")[0]["decision_data"]["approve"] is True


def test_task_lease_is_exclusive_and_recovery_counts_attempts(tmp_path):
    tasks = TaskStore(Database(tmp_path / "m.db"))
    t = tasks.create("code", "Write slugify", priority="high")
    assert tasks.claim(t.id, "a", 60) is not None
    assert tasks.claim(t.id, "b", 60) is None
    assert tasks.complete(t.id, "b", {"x": 1}) is None  # not the lease owner: ignored
    requeued, escalated = tasks.recover_orphans(max_attempts=3)
    assert requeued == [t.id] and escalated == []
    again = tasks.get(t.id)
    assert again.status == TaskStatus.QUEUED and again.attempts == 1
    for _ in range(2):
        tasks.claim(t.id, "a", 60)
        tasks.recover_orphans(max_attempts=3)
    assert tasks.get(t.id).status == TaskStatus.ESCALATED


def test_eight_threads_writing_lose_nothing(tmp_path):
    db = Database(tmp_path / "m.db")
    store, tasks = MemoryStore(db), TaskStore(db)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(50):
                store.log_activity(f"agent{n}", "step", {"i": i})
                store.remember(f"agent{n}", "counter", i)
                tasks.create("analysis", f"task {n}-{i}")
        except BaseException as e:  # collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert db.query_one("SELECT COUNT(*) AS n FROM activity_logs")["n"] == 400
    assert db.query_one("SELECT COUNT(*) AS n FROM tasks")["n"] == 400
    assert all(store.recall(f"agent{n}", "counter") == 49 for n in range(8))
    assert db.integrity_ok()


def test_claim_race_between_threads(tmp_path):
    tasks = TaskStore(Database(tmp_path / "m.db"))
    ids = [tasks.create("analysis", f"t{i}").id for i in range(30)]
    won: list[tuple[str, str]] = []
    lock = threading.Lock()

    def grab(owner: str) -> None:
        for tid in ids:
            if tasks.claim(tid, owner, 60):
                with lock:
                    won.append((tid, owner))

    threads = [threading.Thread(target=grab, args=(f"w{i}",)) for i in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(t for t, _ in won) == sorted(ids)  # every task claimed exactly once


def test_secrets_are_scrubbed_before_they_are_stored(tmp_path):
    from ai_agents.logging_setup import Redactor

    key = "sk-" + "test-fake-abcdefghijklmnopqrstuv"
    redact = Redactor([key]).redact_value
    db = Database(tmp_path / "m.db")
    store, tasks = MemoryStore(db, redact), TaskStore(db, redact)
    t = tasks.create("code", "Leaky")
    tasks.claim(t.id, "w", 60)
    tasks.transition(t.id, TaskStatus.ESCALATED, error=f"test printed {key}", result={"output": key})
    store.log_activity("qa", "tests_run", {"tail": f"KEY={key}"}, task_id=t.id)
    store.record_decision("ceo", "escalation", {"reasoning": key}, task_id=t.id)
    dump = "\n".join(str(tuple(r)) for table in ("tasks", "activity_logs", "decision_history")
                     for r in db.connection().execute(f"SELECT * FROM {table}"))
    assert key not in dump and "[REDACTED]" in dump
