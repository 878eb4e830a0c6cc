"""The CEO's split of an escalated task is one transaction: the target's status, its subtasks and the
decision row all land, or none does. Faults are injected in the real SQLite file (a trigger), not mocked."""

from __future__ import annotations

import sqlite3

import pytest

from ai_agents.domain import TaskStatus, TaskType
from ai_agents.llm.script import Script

SPLIT = {"action": "split", "reasoning": "too big", "subtasks": [
    {"title": "First half of the study", "type": "analysis", "assigned_agents": ["cfo"]},
    {"title": "Second half of the study", "type": "analysis", "assigned_agents": ["cfo"]},
]}


def _fail_subtask_inserts(db, parent_id: str) -> None:
    """The storage refuses any task created under ``parent_id`` (a full disk, a constraint, ...)."""
    db.execute(f"CREATE TRIGGER refuse_children BEFORE INSERT ON tasks WHEN NEW.parent_id = '{parent_id}' "
               "BEGIN SELECT RAISE(ABORT, 'injected: the subtask insert failed'); END")


def test_a_failed_subtask_insert_leaves_the_escalated_task_unchanged_then_the_split_applies(fake_llm, build):
    fake_llm.set_script(Script.from_data({"rules": [{"when": {"schema": "EscalationDecision"}, "reply": SPLIT}]}))
    app = build(fake_llm, start=False)
    target = app.tasks.create("analysis", "Whole market study", "everything at once", assigned_agent="cfo",
                              payload={"note": "kept"})
    assert app.tasks.transition(target.id, TaskStatus.ESCALATED, error="too big to finish")
    before = app.tasks.get(target.id)
    flow = app.orchestrator.flows[TaskType.ESCALATION]
    decide = app.tasks.create(TaskType.ESCALATION, f"Decide on escalated task {target.id}",
                              payload={"target": target.id})

    _fail_subtask_inserts(app.db, target.id)
    with pytest.raises(sqlite3.IntegrityError, match="injected"):
        flow.run(decide)
    after = app.tasks.get(target.id)
    assert (after.status, after.payload, after.result, after.error, after.finished_at) == \
        (TaskStatus.ESCALATED, {"note": "kept"}, None, "too big to finish", before.finished_at)
    assert app.db.query("SELECT id FROM tasks WHERE parent_id = ?", (target.id,)) == []
    assert app.memory.decisions(target.id, "escalation") == []

    app.db.execute("DROP TRIGGER refuse_children")
    outcome = flow.run(decide)
    assert outcome.result == {"target": target.id, "action": "split", "applied": True}
    split = app.tasks.get(target.id)
    assert split.status == TaskStatus.CANCELLED and split.payload == {"note": "kept", "escalations": 1}
    assert split.result == {"split_into": ["First half of the study", "Second half of the study"]}
    children = app.db.query("SELECT title, status FROM tasks WHERE parent_id = ? ORDER BY title", (target.id,))
    assert children == [{"title": "First half of the study", "status": "queued"},
                        {"title": "Second half of the study", "status": "queued"}]
    [decision] = app.memory.decisions(target.id, "escalation")
    assert decision["decision_data"]["action"] == "split"

    # Decided already: a second run changes nothing and records nothing.
    assert flow.run(decide).result["action"] == "none"
    assert len(app.db.query("SELECT id FROM tasks WHERE parent_id = ?", (target.id,))) == 2
    assert len(app.memory.decisions(target.id, "escalation")) == 1


def test_a_failed_decision_record_rolls_the_split_back(fake_llm, build):
    """The decision row is part of the same transaction: when it cannot be written, nothing changed."""
    fake_llm.set_script(Script.from_data({"rules": [{"when": {"schema": "EscalationDecision"}, "reply": SPLIT}]}))
    app = build(fake_llm, start=False)
    target = app.tasks.create("analysis", "Another market study", assigned_agent="cfo")
    assert app.tasks.transition(target.id, TaskStatus.ESCALATED, error="failed")
    app.db.execute("CREATE TRIGGER refuse_decisions BEFORE INSERT ON decision_history "
                   "BEGIN SELECT RAISE(ABORT, 'injected: no decision row'); END")
    decide = app.tasks.create(TaskType.ESCALATION, "Decide", payload={"target": target.id})
    with pytest.raises(sqlite3.IntegrityError, match="injected"):
        app.orchestrator.flows[TaskType.ESCALATION].run(decide)
    assert app.tasks.get(target.id).status == TaskStatus.ESCALATED
    assert app.db.query("SELECT id FROM tasks WHERE parent_id = ?", (target.id,)) == []
