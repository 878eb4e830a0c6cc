"""A provider answering 200 with a cut-off JSON body (the openai SDK then raises a bare
``json.JSONDecodeError``) is a transient provider failure for the daemon: the task is retried
and escalated, never ``task_crashed``; the CEO's escalation work for it meets the same fault unharmed.
"""

from __future__ import annotations

import json

from ai_agents.domain import TaskStatus
from tests.conftest import wait_for


def test_cut_off_json_bodies_are_retried_not_crashes_and_the_cycle_survives(fake_llm, build):
    fake_llm.fault_rate(1.0, kinds=["cut_json"], seed=1)
    app = build(fake_llm, {"orchestrator": {"max_task_attempts": 2, "check_interval": 3600},
                           "llm": {"max_retries": 0}, "agents": {"cfo": {"workers": 1}}})
    task = app.orchestrator.submit_task("analysis", "Market study", assigned_agent="cfo")
    wait_for(lambda: app.tasks.get(task.id).status == TaskStatus.ESCALATED, message="escalated after retries")

    errors = [a for a in app.memory.activities(task.id) if a["activity"] == "task_error"]
    assert len(errors) == 2
    for activity in errors:
        details = activity["details"]
        assert details["action"] == "retry" and "LLMUnavailableError" in details["error"]

    # The escalation decision is the CEO's queued work (the main loop never calls a model): it meets
    # the same fault and is retried as a task, never task_crashed, while the cycle runs to its end.
    before = app.orchestrator.loop_at
    app.orchestrator.cycle()
    assert app.orchestrator.loop_at is not None and app.orchestrator.loop_at != before

    def events() -> list[dict]:
        log = app.live.current.logging.file.read_text()
        return [json.loads(line) for line in log.splitlines() if line.startswith("{")]

    wait_for(lambda: any(e.get("event") in ("task_retry", "task_escalated") and e.get("agent") == "ceo"
                         and "LLMUnavailableError" in str(e.get("error")) for e in events()),
             message="the CEO's escalation work met the fault and was retried as a task")
    names = [e.get("event") for e in events()]
    assert "task_crashed" not in names and "job_failed" not in names
    fake_llm.fault_rate(0.0)
    fake_llm.enqueue({"action": "drop", "reasoning": "flaky provider"})

    def decided() -> bool:
        app.orchestrator.cycle()  # check_interval is an hour: the test drives the main loop
        return app.tasks.get(task.id).status == TaskStatus.FAILED

    wait_for(decided, message="decided (or given up) once the fault stops")
    names = [e.get("event") for e in events()]
    assert "task_crashed" not in names and "job_failed" not in names
