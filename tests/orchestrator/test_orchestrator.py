"""The always-on loop through the real SDK, a fake LLM HTTP server, real SQLite and a real git workspace."""

from __future__ import annotations

import json

import yaml

from ai_agents.domain import TaskStatus, TaskType
from ai_agents.llm.script import Script
from tests.conftest import wait_for

CEO, CFO = "You are the CEO", "You are the CFO"
GOOD = {"valid": True, "score": 9, "issues": []}


def product(summary: str, follow_ups: list | None = None) -> dict:
    return {"summary": summary, "document": f"## {summary}\n\nDetails.", "follow_up_tasks": follow_ups or []}


def log_events(app) -> list[dict]:
    return [json.loads(line) for line in app.live.current.logging.file.read_text().splitlines()]


def statuses(app) -> dict[str, str]:
    return {t.title: t.status.value for t in app.tasks.list()}


def started_order(app) -> list[str]:
    rows = app.db.query("SELECT task_id FROM activity_logs WHERE activity = 'task_started' ORDER BY id")
    titles = {t.id: t.title for t in app.tasks.list()}
    return [titles[r["task_id"]] for r in rows]


def test_idle_ceo_generates_tasks_that_run_in_priority_order(fake_llm, build):
    fake_llm.set_script(Script.from_data({"rules": [
        {"when": {"schema": "TaskPlan"}, "times": 1, "reply": {"reasoning": "goals", "tasks": [
            {"title": "Low priority survey", "type": "analysis", "priority": "low", "assigned_agents": ["cfo"]},
            {"title": "High priority costing", "type": "analysis", "priority": "high", "assigned_agents": ["cfo"]},
            {"title": "Medium priority review", "type": "analysis", "priority": "medium", "assigned_agents": ["cfo"]},
        ]}},
        {"when": {"schema": "TaskPlan"}, "reply": {"reasoning": "nothing new", "tasks": []}},
        {"when": {"schema": "WorkProduct"}, "reply": product("done")},
        {"when": {"schema": "Validation"}, "reply": GOOD},
    ]}))
    # The idle main loop queues a generation task for the CEO's worker; the CEO's accepted tasks are
    # created at once (with the generation task's completion) and routed in priority order.
    app = build(fake_llm, {"orchestrator": {"generate_when_idle": True}})
    work = ["High priority costing", "Medium priority review", "Low priority survey"]

    def work_done() -> bool:
        done = [t for t in app.tasks.list() if t.type != TaskType.GENERATION and t.status == TaskStatus.COMPLETED]
        return len(done) == 3
    wait_for(work_done, message="all generated tasks completed")
    # Idle again once the three are done: a later generation (answered "nothing new") may have run already.
    generation = [t for t in app.tasks.list() if t.type == TaskType.GENERATION]
    assert generation and all(g.assigned_agent == "ceo" for g in generation)
    assert all(not g.result or not g.result["created"] for g in generation[1:])
    assert sorted(generation[0].result["created"]) == sorted(work)
    assert [title for title in started_order(app) if title in work] == work
    gen = app.memory.decisions(decision_type="task_generation")
    assert gen[0]["decision_data"]["created"] == ["Low priority survey", "High priority costing",
                                                  "Medium priority review"]
    # The results are documents committed in the workspace by the CFO agent.
    log = app.workspace.git.log(10)
    assert any(e["author_email"] == "cfo@ai-agents.local" for e in log)
    assert len(list((app.live.current.file_system.workspace_path / "docs").glob("*.md"))) == 3
    # The main loop itself never asked the model: the CEO's calls belong to the generation task it ran.
    ceo_calls = app.db.query("SELECT task_id FROM llm_calls WHERE agent = 'ceo'")
    called_for = {r["task_id"] for r in ceo_calls}
    assert generation[0].id in called_for and called_for <= {g.id for g in generation}
    assert not any(e.get("event") == "job_failed" for e in log_events(app))


def test_follow_up_tasks_are_chained_with_parent(fake_llm, build):
    fake_llm.set_script(Script.from_data({"rules": [
        {"when": {"schema": "WorkProduct", "contains": "Parent analysis"}, "reply": product("parent", [
            {"title": "Child costing", "type": "analysis", "assigned_agents": ["cfo"]}])},
        {"when": {"schema": "WorkProduct"}, "reply": product("child")},
        {"when": {"schema": "Validation"}, "reply": GOOD},
    ]}))
    app = build(fake_llm)
    parent = app.orchestrator.submit_task("analysis", "Parent analysis", assigned_agent="ceo")
    wait_for(lambda: len([t for t in app.tasks.list() if t.status == TaskStatus.COMPLETED]) == 2,
             message="parent and child completed")
    child = next(t for t in app.tasks.list() if t.title == "Child costing")
    assert child.parent_id == parent.id and child.assigned_agent == "cfo"
    assert app.tasks.get(parent.id).result["summary"] == "parent"


def test_self_correction_is_bounded_then_escalation_decided(fake_llm, build):
    fake_llm.set_script(Script.from_data({"rules": [
        {"when": {"schema": "WorkProduct"}, "reply": product("weak")},
        {"when": {"schema": "Validation"}, "reply": {"valid": False, "score": 3, "issues": ["too vague"]}},
        {"when": {"schema": "EscalationDecision"}, "reply": {"action": "drop", "reasoning": "not worth it"}},
    ]}))
    app = build(fake_llm, {"agents": {"max_fix_attempts": 3, "max_approaches": 2}})
    task = app.orchestrator.submit_task("analysis", "Vague market study", assigned_agent="cfo")
    wait_for(lambda: app.tasks.get(task.id).status == TaskStatus.FAILED, message="task failed after escalation")
    schemas = [r.json.get("response_format", {}).get("json_schema", {}).get("name") for r in fake_llm.requests]
    assert schemas.count("Validation") == 6  # 2 approaches x 3 checks, then it stops
    assert schemas.count("WorkProduct") == 6  # each approach: one draft, two fixes
    final = app.tasks.get(task.id)
    assert "dropped by the CEO" in final.error
    assert app.memory.decisions(task.id, "escalation")[0]["decision_data"]["action"] == "drop"
    activities = [a["activity"] for a in app.memory.activities(task.id)]
    assert activities.count("approach_changed") == 1


def test_ceo_never_regenerates_existing_tasks(fake_llm, build):
    fake_llm.set_script(Script.from_data({"rules": [
        {"when": {"schema": "TaskPlan"}, "reply": {"tasks": [
            {"title": "Write the README", "type": "analysis"},
            {"title": "write the readme!", "type": "analysis"},
            {"title": "Brand new idea", "type": "analysis", "description": "Existing description text"},
        ]}},
    ]}))
    app = build(fake_llm, {"paused": True, "orchestrator": {"generate_when_idle": True}}, start=False)
    done = app.tasks.create("analysis", "Write the README")
    app.tasks.transition(done.id, TaskStatus.COMPLETED)
    other = app.tasks.create("analysis", "Other", "Existing description text.")
    app.tasks.transition(other.id, TaskStatus.COMPLETED)
    generation = app.tasks.create(TaskType.GENERATION, "Generate")
    outcome = app.orchestrator.flows[TaskType.GENERATION].run(generation)
    assert outcome.follow_ups == [] and outcome.result["created"] == []
    skipped = app.memory.decisions(decision_type="task_generation")[0]["decision_data"]["skipped"]
    assert len(skipped) == 3


def test_team_decision_records_every_verdict(fake_llm, build):
    criteria = {"criteria": [{"name": "cost", "threshold": 100, "weight": 1}], "reasoning": "matters"}
    fake_llm.set_script(Script.from_data({"rules": [
        {"when": {"schema": "ApprovalCriteria"}, "reply": criteria},
        {"when": {"schema": "Verdict", "contains": "You are the risk officer"},
         "reply": {"approve": False, "score": 4, "reasoning": "risky", "concerns": ["ops load"]}},
        {"when": {"schema": "Verdict"}, "reply": {"approve": True, "score": 8, "reasoning": "fine"}},
        {"when": {"schema": "CEODecision"}, "reply": {"approve": True, "reasoning": "3 of 4 approve", "tasks": [
            {"title": "Implement the proposal", "type": "analysis", "assigned_agents": ["cfo"]}]}},
        {"when": {"schema": "WorkProduct"}, "reply": product("implemented")},
        {"when": {"schema": "Validation"}, "reply": GOOD},
    ]}))
    app = build(fake_llm)
    task = app.orchestrator.submit_task("decision", "Offer a paid tier")
    wait_for(lambda: app.tasks.get(task.id).status == TaskStatus.COMPLETED, message="decision made")
    verdicts = app.memory.decisions(task.id, "verdict")
    assert sorted(v["agent_name"] for v in verdicts) == ["cfo", "legal", "risk", "tech_lead"]
    assert {v["agent_name"]: v["decision_data"]["approve"] for v in verdicts}["risk"] is False
    assert all(v["decision_data"]["criteria"][0]["name"] == "cost" for v in verdicts)
    decision = app.memory.decisions(task.id, "decision")[0]["decision_data"]
    assert decision["approve"] is True and decision["verdicts"]["risk"] is False
    wait_for(lambda: statuses(app).get("Implement the proposal") == "completed", message="approved work done")
    # the CFO saw the real LLM spend
    cfo_prompts = [r for r in fake_llm.requests if CFO in str(r.json) and "llm_budget" in str(r.json)]
    assert cfo_prompts


def test_paused_stops_new_work_live(fake_llm, build):
    fake_llm.set_script(Script.from_data({"rules": [
        {"when": {"schema": "WorkProduct"}, "reply": product("ok")},
        {"when": {"schema": "Validation"}, "reply": GOOD},
    ]}))
    app = build(fake_llm)
    path = app.live.path
    data = yaml.safe_load(path.read_text())
    data["paused"] = True
    path.write_text(yaml.safe_dump(data))
    wait_for(lambda: app.live.current.paused, timeout=5, message="pause picked up within 5 s")
    task = app.orchestrator.submit_task("analysis", "While paused", assigned_agent="cfo")
    import time
    time.sleep(1.5)
    assert app.tasks.get(task.id).status == TaskStatus.QUEUED
    data["paused"] = False
    path.write_text(yaml.safe_dump(data))
    wait_for(lambda: app.tasks.get(task.id).status == TaskStatus.COMPLETED, message="resumed")


def test_stuck_task_is_retried_then_escalated(fake_llm, build):
    # The first model answer never arrives in time: the server holds it longer than task_timeout.
    fake_llm.set_script(Script.from_data({"rules": [
        {"when": {"schema": "WorkProduct"}, "reply": product("ok")},
        {"when": {"schema": "Validation"}, "reply": GOOD},
        {"when": {"schema": "EscalationDecision"}, "reply": {"action": "drop", "reasoning": "stuck"}},
    ]}))
    fake_llm.hang_seconds = 30  # the hung calls never come back during the test
    fake_llm.fault_rate(1.0, kinds=["timeout"], seed=1)
    app = build(fake_llm, {"orchestrator": {"task_timeout": 1, "max_task_attempts": 2},
                           "llm": {"timeout": 30, "max_retries": 0}, "agents": {"cfo": {"workers": 1}}})
    task = app.orchestrator.submit_task("analysis", "Slow thing", assigned_agent="cfo")
    # Every answer hangs until both attempts were ended by task_timeout (no race with the second call).
    wait_for(lambda: app.tasks.get(task.id).status in (TaskStatus.ESCALATED, TaskStatus.FAILED), timeout=40,
             message="escalated after max attempts")
    assert app.tasks.get(task.id).attempts == 2
    fake_llm.fault_rate(0.0)
    wait_for(lambda: app.tasks.get(task.id).status == TaskStatus.FAILED, timeout=40,
             message="the CEO's queued escalation decision (drop) applied")
    rows = app.db.query("SELECT activity FROM activity_logs WHERE task_id = ? AND activity = 'task_started'",
                        (task.id,))
    assert len(rows) == 2
