"""The code pipeline's typed stage machine: payloads of the previous version resume; an unknown stage fails."""

from __future__ import annotations

import pytest

from ai_agents.domain import TaskStatus
from ai_agents.errors import TaskFailedError
from ai_agents.orchestrator.stages import CodePayload, ReleaseAction, ReleasePayload, Stage, TestsHandoff, stage_of
from tests.conftest import wait_for

# As the previous version stored them (flat keys; a done release action as ``<action>_done: true``).
OLD_CODE = {"stage": "code", "branch": "agents/t1-x", "test_path": "tests/test_x.py", "module_path": "x.py",
            "requirements": ["r"], "constraints": [], "tests_commit": "abc", "queue_feedback": None, "escalations": 1}
OLD_RELEASE = {**OLD_CODE, "stage": "release", "code_commit": "def", "merge_commit": "123", "tests_passed": 4,
               "queue_feedback": [], "push_done": True, "action": "deploy"}


def test_old_payloads_load_into_the_stage_models() -> None:
    code = CodePayload.load(OLD_CODE)
    assert code.stage is Stage.CODE and code.queue_returns == 0 and code.queue_feedback == []
    assert code.qa_files() == {"tests/test_x.py"} and code.pending_change is None
    release = ReleasePayload.load(OLD_RELEASE)
    assert release.released == [ReleaseAction.PUSH] and release.merge_commit == "123"
    assert ReleasePayload.load({**OLD_RELEASE, "deploy_done": True}).released == [ReleaseAction.PUSH,
                                                                                  ReleaseAction.DEPLOY]
    assert ReleasePayload.load({**OLD_RELEASE, "push_done": "yes"}).released == []  # only a real flag counts
    assert stage_of({}) is Stage.TESTS  # a new task


def test_stage_results_never_carry_the_stage() -> None:
    handoff = TestsHandoff(stage=Stage.RELEASE, branch="b", test_path="tests/test_x.py")
    assert "stage" not in handoff.result() and handoff.result()["test_path"] == "tests/test_x.py"
    assert set(ReleasePayload(merge_commit="1").result("released", "merge_commit")) == {"released", "merge_commit"}


@pytest.mark.parametrize("payload", [{"stage": "relase"}, {"stage": ["release"]}, {"stage": "release"}])
def test_a_payload_that_does_not_fit_is_a_clear_error(payload: dict) -> None:
    with pytest.raises(TaskFailedError, match=r"stage|merge_commit"):
        ReleasePayload.load(payload) if payload["stage"] == "release" else stage_of(payload)


def _settled(app, task_id: str):
    return wait_for(lambda: (t := app.tasks.get(task_id)) and t.status in (
        TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.ESCALATED) and t, timeout=60, message="task settled")


def test_tasks_stored_by_the_previous_version_resume_in_their_stage(fake_llm, build) -> None:
    app = build(fake_llm, {"deployment": {"enabled": True, "type": "ci_cd"}})
    head = app.workspace.git.rev("main")
    old = {**OLD_RELEASE, "merge_commit": head}
    deployed = app.orchestrator.submit_task("code", "Deployed before the upgrade", payload={**old, "deploy_done": True},
                                            assigned_agent="developer")
    pending = app.orchestrator.submit_task("code", "Not yet deployed at the upgrade", payload=old,
                                           assigned_agent="developer")
    for task in (deployed, pending):
        done = _settled(app, task.id)
        assert done.status == TaskStatus.COMPLETED, done.error
        assert done.result["merge_commit"] == head and done.result["tests_passed"] == 4
    assert "deploy" not in app.tasks.get(deployed.id).result  # done before the upgrade: not again
    assert app.tasks.get(pending.id).result["deploy"]["status"] == "succeeded"
    history = app.memory.get_state("deployment")[0]["history"]
    assert len([h for h in history if h["action"] == "deploy"]) == 1
    assert fake_llm.requests == []  # the release stage asks no model anything


def test_an_unknown_stage_fails_the_task_and_releases_nothing(fake_llm, build) -> None:
    app = build(fake_llm, {"deployment": {"enabled": True, "type": "ci_cd"}})
    head = app.workspace.git.rev("main")
    # The previous version took any stage but "tests" and "code" for the release.
    task = app.orchestrator.submit_task("code", "A stage nobody knows",
                                        payload={**OLD_RELEASE, "stage": "relase", "merge_commit": head})
    done = _settled(app, task.id)
    # Escalated; the stored payload counts an earlier escalation, so the main loop may already have failed
    # it as a loop (the error kept) by the time it is read.
    assert done.status in (TaskStatus.ESCALATED, TaskStatus.FAILED), done
    assert "stage: Input should be" in (done.error or ""), done.error
    state, _ = app.memory.get_state("deployment")
    assert not [h for h in (state or {}).get("history", []) if h["action"] == "deploy"]
    assert app.workspace.git.rev("main") == head


def test_a_call_asked_ahead_runs_in_the_attempt_and_hands_back_its_error() -> None:
    import threading

    from ai_agents import attempt as current_lease
    from ai_agents.orchestrator.pipeline import ask_ahead

    class Guard:
        def check(self) -> None: ...

        def beat(self) -> None: ...

        def adopt(self, pid: int) -> None: ...

        def disown(self, pid: int) -> None: ...

    guard = Guard()
    with current_lease.bound(guard):
        ahead = ask_ahead(lambda: (current_lease.current(), threading.current_thread().name))
    assert ahead.result(10) == (guard, "ask-ahead")  # the lease's fencing applies to the call's thread too
    failing = ask_ahead(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failing.result(10)
