"""Supervision inside the process: dead worker threads restarted, a failing job never stops the main loop."""

from __future__ import annotations

import json

import pytest

from ai_agents.domain import Role, Task, TaskStatus, TaskType
from ai_agents.orchestrator import FlowResult
from ai_agents.orchestrator.supervisor import MAX_RESTARTS_PER_HOUR
from tests.conftest import wait_for


class DyingFlow:
    """Kills the worker thread that runs it (an escaped BaseException), ``deaths`` times, then works."""

    def __init__(self, deaths: int):
        self.deaths = deaths

    def role_for(self, task: Task) -> Role:
        return Role.CFO

    def run(self, task: Task) -> FlowResult:
        if self.deaths > 0:
            self.deaths -= 1
            raise SystemExit("worker thread killed")  # not an Exception: the worker thread dies
        return FlowResult(result={"ok": True})


def events(app) -> list[dict]:
    return [json.loads(line) for line in app.live.current.logging.file.read_text().splitlines()]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_dead_worker_thread_is_restarted_and_work_goes_on(build):
    app = build(None, {"orchestrator": {"task_timeout": 1}}, start=False)
    app.orchestrator.flows[TaskType.ANALYSIS] = DyingFlow(deaths=1)
    app.start()
    task = app.orchestrator.submit_task("analysis", "Kills its worker", assigned_agent="cfo")
    wait_for(lambda: app.tasks.get(task.id).status == TaskStatus.COMPLETED, timeout=20,
             message="task completed by the restarted worker")
    restarted = [e for e in events(app) if e.get("alert_name") == "worker_restarted"]
    assert restarted and restarted[0]["alert"] is True and restarted[0]["role"] == "cfo"
    assert app.tasks.get(task.id).attempts == 2  # the dead worker's attempt, then the retry
    alive = [w for w in app.orchestrator.supervisor.workers if w.role == Role.CFO]
    assert len(alive) == 1 and alive[0].is_alive()
    died = [e for e in events(app) if e["event"] == "worker_died"]
    assert died[0]["task_id"] == task.id and "SystemExit" in died[0]["error"]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_too_many_restarts_mark_the_role_unhealthy(build):
    app = build(None, {"orchestrator": {"task_timeout": 0.5}}, start=False)
    app.orchestrator.flows[TaskType.ANALYSIS] = DyingFlow(deaths=100)
    app.start()
    for i in range(MAX_RESTARTS_PER_HOUR + 1):
        app.orchestrator.submit_task("analysis", f"Killer {i}", assigned_agent="cfo")
    wait_for(lambda: "cfo" in app.orchestrator.supervisor.unhealthy_roles, timeout=30, message="cfo unhealthy")
    assert any(e.get("alert_name") == "role_unhealthy" for e in events(app))
    wait_for(lambda: "cfo" in (app.memory.get_state("heartbeat")[0] or {}).get("unhealthy_roles", []),
             message="heartbeat reports the unhealthy role")
    from ai_agents.ops.health import check_health
    report = check_health(app.memory)
    assert not report.ok and "cfo" in report.reason


def test_main_loop_survives_a_failing_job(build):
    app = build(None, {"orchestrator": {"generate_when_idle": True}}, start=False)
    calls = {"n": 0}

    def broken_housekeeping() -> None:
        calls["n"] += 1
        raise RuntimeError("housekeeping exploded")

    app.orchestrator.recovery.housekeeping = broken_housekeeping
    app.start()
    wait_for(lambda: calls["n"] >= 3, timeout=10, message="the main loop ran again after failing")
    failed = [e for e in events(app) if e["event"] == "job_failed"]
    # Contained to its step: the cycle ran on to its end (housekeeping, loop time).
    assert failed and failed[0]["job"] == "housekeeping" and failed[0]["exception"]
    assert app.orchestrator.loop_at is not None
    beat = app.memory.get_state("heartbeat")
    assert beat[1] is not None and app.orchestrator.scheduler.running
