"""One tampering event is one alert row: the static check and the verdict each raise it once (the
Developer's activity record keeps the trail, not a second alert)."""

from __future__ import annotations

from pathlib import Path

import yaml

from ai_agents.domain import TaskStatus
from ai_agents.memory import Database
from tests.pipeline.conftest import code_task_payload, story_script
from tests.pipeline.test_tdd_pipeline import FIXED, final

CORPUS = Path(__file__).resolve().parents[1] / "hostile" / "corpus"


def _first_answer(case: str) -> dict:
    """The hostile corpus's first CodeChange of ``case`` (its files are plain, no shorthand)."""
    answer = yaml.safe_load((CORPUS / case).read_text())["replies"]["CodeChange"][0]
    return {**answer, "files": [f for f in answer["files"] if isinstance(f, dict)]}


def test_each_tampering_event_is_stored_as_one_alert_row(fake_llm, build):
    static = _first_answer("dev_shadow_pytest.yaml")  # refused by the static check before it runs
    verdict = _first_answer("verdict_report_forged.yaml")  # caught by the runner's verdict
    fake_llm.set_script(story_script(CodeChange=[static, verdict, FIXED]))
    app = build(fake_llm)
    task = app.orchestrator.submit_task("code", **code_task_payload())
    done = final(app, task.id)
    assert done.status == TaskStatus.COMPLETED, done.error
    sources = [a["details"]["source"] for a in app.memory.activities(task.id) if a["activity"] == "test_tampering"]
    assert sorted(sources) == ["static check", "verdict"]  # two events, both in the trail

    app.stop()  # the recorder writes what it queued before it leaves
    rows = Database(app.live.current.memory.database_path).query(
        "SELECT name, level, task_id, fields FROM alerts WHERE name = 'test_tampering' ORDER BY id")
    assert len(rows) == 2, rows
    assert all(r["level"] == "warning" and r["task_id"] == task.id for r in rows)
    assert '"static check"' in rows[0]["fields"] and "junitxml" in rows[0]["fields"]
    assert '"static check"' not in rows[1]["fields"]
