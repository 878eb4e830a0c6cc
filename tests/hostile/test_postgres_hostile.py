"""A hostile model against the PostgreSQL store, through the real pipeline (build_app, the analysis
flow, the fake provider): SQL-looking text, placeholders, quotes and NUL bytes in the answer, the
document and the follow-up tasks it proposes are stored as data, and the daemon goes on."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ai_agents.app import build_app
from ai_agents.config import load_config
from ai_agents.domain import TaskStatus
from ai_agents.llm.script import Script
from ai_agents.logging_setup import Redactor, configure_logging
from tests.conftest import wait_for
from tests.fakes.llm_server import FakeLLMServer

NASTY = "x'); DROP TABLE tasks; -- %s %(id)s ? $1 \\\\ \x00 \u202e"
PLAIN = {"summary": "ok", "document": "# ok", "follow_up_tasks": []}
GOOD = {"valid": True, "score": 9, "issues": []}


def test_hostile_answers_are_data_in_postgres_and_the_daemon_goes_on(
        pg_server: Any, fake_llm: FakeLLMServer, write_config: Callable[..., Path]) -> None:
    fake_llm.set_script(Script.from_data({"rules": [{"when": {"schema": "WorkProduct"}, "reply": PLAIN},
                                                    {"when": {"schema": "Validation"}, "reply": GOOD}]}))
    fake_llm.enqueue({"summary": NASTY, "document": f"# Report\n\n{NASTY}\n", "follow_up_tasks": [
        {"title": f"Follow {NASTY}", "description": NASTY, "type": "analysis"},
        {"title": "'; DELETE FROM nodes; --", "type": "analysis", "priority": "high"}]})
    config = write_config(fake_llm, {"memory": {"database_url": pg_server.new_database("hostile")},
                                     "node": {"id": "hostile-node"}})
    settings = load_config(config)
    configure_logging(settings.logging, Redactor(settings.secret_values()))
    app = build_app(settings, config, Redactor(settings.secret_values()), watch=False)
    app.start()
    try:
        first = app.orchestrator.submit_task("analysis", "Hostile study", assigned_agent="cfo")
        wait_for(lambda: app.tasks.get(first.id).status == TaskStatus.COMPLETED, timeout=60,
                 message="the hostile task completed")
        children = [t for t in app.tasks.list() if t.parent_id == first.id]
        titles = sorted(t.title.replace("\ufffd", "\x00") for t in children)
        assert titles == sorted([f"Follow {NASTY}".strip(), "'; DELETE FROM nodes; --"])
        wait_for(lambda: all(app.tasks.get(t.id).status == TaskStatus.COMPLETED for t in children), timeout=60,
                 message="the follow-ups completed too: the daemon goes on")
        assert app.db.query_one("SELECT COUNT(*) AS n FROM nodes") == {"n": 1}  # nothing ran from the text
        assert len(app.tasks.list()) == 3
    finally:
        app.stop()
