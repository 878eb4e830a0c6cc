"""kill -9 in the middle of work, then a restart: every submitted task finished exactly once."""

from __future__ import annotations

import signal
import sqlite3
from collections import Counter

from ai_agents.llm.script import Script
from ai_agents.memory import Database, TaskStore
from tests.conftest import wait_for
from tests.daemon import Daemon, cli

GOOD = {"valid": True, "score": 9, "issues": []}


def _db(config) -> sqlite3.Connection:
    conn = sqlite3.connect(config.parent / "data" / "agents.db")
    conn.row_factory = sqlite3.Row
    return conn


def test_kill9_mid_work_then_restart_finishes_every_task_once(fake_llm, write_config):
    fake_llm.set_script(Script.from_data({"rules": [
        {"when": {"schema": "WorkProduct"}, "reply": {"summary": "done", "document": "# done"}},
        {"when": {"schema": "Validation"}, "reply": GOOD},
    ]}))
    fake_llm.delay = 0.15
    config = write_config(fake_llm, {"agents": {"cfo": {"workers": 2}, "risk": {"workers": 2}}})
    titles = [f"Crash task {i}" for i in range(12)]
    # One through the CLI (what an operator does), the rest straight into the store `submit` writes to:
    # eleven more interpreter starts would test nothing new.
    assert cli(config, "submit", titles[0], "--type", "analysis").returncode == 0
    store = Database(config.parent / "data" / "agents.db")
    for title in titles[1:]:
        TaskStore(store).create("analysis", title)
    store.close()
    conn = _db(config)
    conn.execute("UPDATE tasks SET assigned_agent = CASE WHEN rowid % 2 = 0 THEN 'cfo' ELSE 'risk' END")
    conn.commit()

    first = Daemon(config).start()
    wait_for(lambda: conn.execute("SELECT COUNT(*) FROM tasks WHERE status = 'completed'").fetchone()[0] >= 2,
             message="some tasks done")
    in_flight = conn.execute("SELECT COUNT(*) FROM tasks WHERE status = 'in_progress'").fetchone()[0]
    first.kill9()
    assert in_flight >= 1  # the kill landed in the middle of work
    orphans = conn.execute("SELECT id FROM tasks WHERE status = 'in_progress'").fetchall()
    assert orphans  # left behind by the dead process

    second = Daemon(config).start()
    try:
        recovered = second.wait_event("tasks_recovered")
        assert sorted(recovered["requeued"]) == sorted(r["id"] for r in orphans)
        wait_for(lambda: conn.execute("SELECT COUNT(*) FROM tasks WHERE status = 'completed'").fetchone()[0] == 12,
                 timeout=60, message="all 12 tasks completed")
        second.signal(signal.SIGTERM)
        assert second.wait(15) == 0
    finally:
        second.stop()

    rows = conn.execute("SELECT id, status, attempts FROM tasks").fetchall()
    assert len(rows) == 12 and all(r["status"] == "completed" for r in rows)
    completions = Counter(r[0] for r in conn.execute(
        "SELECT task_id FROM activity_logs WHERE activity = 'task_completed'"))
    assert set(completions.values()) == {1}  # finished exactly once each
    restarted = {r["id"] for r in orphans}
    assert all(r["attempts"] == (2 if r["id"] in restarted else 1) for r in rows)
    # never two workers on one task at the same time: starts of a task are separated by the crash
    starts = conn.execute("SELECT task_id, COUNT(*) AS n FROM activity_logs WHERE activity = 'task_started' "
                          "GROUP BY task_id").fetchall()
    assert all(s["n"] == (2 if s["task_id"] in restarted else 1) for s in starts)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    docs = list((config.parent / "workspace" / "docs").glob("*.md"))
    assert len(docs) == 12
