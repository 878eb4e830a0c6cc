"""Alerts are rows: every event logged with alert=True while the daemon runs lands in ``alerts`` (redacted),
and the dashboard's overview and ``status`` read them from there, not from the log file."""

from __future__ import annotations

import argparse
import json
import sqlite3
import threading

import structlog

from ai_agents.commands import cmd_status, status_report
from ai_agents.dashboard.queries import DashboardData
from ai_agents.memory import Database
from ai_agents.memory.alerts import AlertStore
from tests.conftest import FAKE_KEY, wait_for


def test_alerts_logged_anywhere_are_stored_redacted_and_read_by_dashboard_and_status(fake_llm, build, capsys):
    app = build(fake_llm)
    task = app.tasks.create("analysis", "Survey the market")
    # The Alerter's own alert, and one another module logs (as the budget guard and tampering checks do).
    assert app.alerter.alert("task_loop", f"task {task.id} keeps failing", task_id=task.id, title=task.title)
    structlog.get_logger("ai_agents.llm").warning("budget_exhausted", alert=True, alert_name="budget_exhausted",
                                                  message="daily budget reached", leaked=f"key {FAKE_KEY}")
    structlog.get_logger("ai_agents.orchestrator").warning("plain_warning", detail="not an alert")
    rows = wait_for(lambda: len(got := app.db.query(
        "SELECT name, level, message, task_id, fields FROM alerts ORDER BY id")) == 2 and got,
        message="both alerts written by the recorder's thread")
    assert [(r["name"], r["level"], r["task_id"]) for r in rows] == [
        ("task_loop", "error", task.id), ("budget_exhausted", "warning", None)]
    assert rows[0]["message"] == f"task {task.id} keeps failing"
    assert json.loads(rows[0]["fields"])["title"] == "Survey the market"
    assert FAKE_KEY not in json.dumps(rows) and "[REDACTED]" in rows[1]["fields"]

    settings = app.live.current
    # The dashboard reads its own connection to the same file; the log file plays no part.
    settings.logging.file.unlink()
    dashboard = DashboardData(settings, Database(settings.memory.database_path))
    shown = dashboard.recent_alerts()
    assert [(a["alert_name"], a["level"], a["task_id"]) for a in shown] == [
        ("budget_exhausted", "warning", None), ("task_loop", "error", task.id)]
    assert status_report(settings, "config.yaml")["alerts_24h"] == 2
    assert cmd_status(argparse.Namespace(config=app.live.path, json=False)) == 0
    assert "alerts:    2 in the last 24 h; latest budget_exhausted (warning)" in capsys.readouterr().out

    app.stop()  # the recorder leaves the root logger with its daemon
    structlog.get_logger("ai_agents.llm").warning("late", alert=True, alert_name="late", message="after stop")
    stored = AlertStore(Database(settings.memory.database_path)).recent(5)
    assert [a.name for a in stored] == ["budget_exhausted", "task_loop"]


def test_raising_an_alert_never_waits_for_a_locked_database(fake_llm, build):
    """A main loop stuck on SQLite's write lock must still reach its watchdog alert: the row waits, not the caller."""
    app = build(fake_llm)
    blocker = sqlite3.connect(app.live.current.memory.database_path, timeout=1, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # every other writer now waits for its busy timeout (30 s)
    try:
        raiser = threading.Thread(target=app.alerter.alert, args=("critical_error", "while the store is locked"))
        raiser.start()
        raiser.join(10)
        assert not raiser.is_alive(), "the alert waited for the database lock"
        assert app.db.query("SELECT id FROM alerts") == []  # readers still see the table (WAL): nothing yet
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    wait_for(lambda: app.db.query("SELECT name FROM alerts") == [{"name": "critical_error"}],
             message="the queued alert written once the lock is released")
