"""The lease is the only handle on running work: fencing tokens on every side effect, attempts ended
by task_timeout with their child processes killed, a lease stolen between review and merge.

Real parts throughout: the fake LLM HTTP server (one answer held back by the test), real SQLite, a
real git workspace, real pytest subprocesses and the ci_cd deployment of the test config.
"""

from __future__ import annotations

import json
import subprocess
import threading
from typing import Any

import pytest

from ai_agents.domain import TaskStatus
from ai_agents.errors import LeaseLost
from ai_agents.llm.script import Script
from ai_agents.memory import Database, TaskStore
from ai_agents.orchestrator.lease import Lease
from tests.conftest import wait_for
from tests.fakes.llm_server import FakeLLMServer
from tests.mainline import merge_commits_green
from tests.pipeline.conftest import code_task_payload, story_rules
from tests.pipeline.test_tdd_pipeline import FIXED


class HoldingServer(FakeLLMServer):
    """The fake LLM server, holding back the first answer for ``schema`` until the test releases it."""

    def __init__(self, schema: str):
        super().__init__()
        self.schema = schema
        self.held = threading.Event()
        self.release = threading.Event()

    def _reply_for(self, req: Any) -> Any:
        if req.structured and req.schema_name == self.schema and not self.held.is_set():
            self.held.set()
            self.release.wait(90)  # the model "hangs" until the test lets it answer
        return super()._reply_for(req)


@pytest.fixture
def holding_review():
    with HoldingServer("Review") as server:
        server.set_script(Script.from_data({"rules": story_rules(CodeChange=FIXED)}))
        yield server
        server.release.set()


def events(app) -> list[dict]:
    return [json.loads(line) for line in app.live.current.logging.file.read_text().splitlines()]


def merges_for(app, task_id: str) -> list[str]:
    ws = app.live.current.file_system.workspace_path
    out = subprocess.run(["git", "-C", str(ws), "log", "--merges", "--format=%H%x00%B%x01", "main"],
                         capture_output=True, text=True, check=True).stdout
    return [c.split("\0")[0] for c in out.split("\x01") if f"Task-Id: {task_id}" in c]


def deploys(app) -> list[dict]:
    state = app.memory.get_state("deployment")[0] or {}
    return [h for h in state.get("history", []) if h["action"] == "deploy"]


def test_a_stale_fencing_token_changes_nothing(tmp_path):
    tasks = TaskStore(Database(tmp_path / "t.db"))
    task = tasks.create("analysis", "Fenced")
    first = tasks.claim(task.id, "w1", 60)
    assert first is not None and first.lease_token == 1
    lease = Lease(tasks, task.id, "w1", first.lease_token, beat_every=0)
    lease.check()
    lease.beat()
    # The attempt is reclaimed (its lease ran out) and claimed again by the same worker name.
    tasks.db.execute("UPDATE tasks SET lease_expires_at = '2000-01-01T00:00:00+00:00' WHERE id = ?", (task.id,))
    assert tasks.expired_leases(max_attempts=3) == ([task.id], [])
    second = tasks.claim(task.id, "w1", 60)
    assert second is not None and second.lease_token == 2
    stale = first.lease_token
    with pytest.raises(LeaseLost):
        lease.check()
    assert not tasks.renew_lease(task.id, "w1", stale)
    assert tasks.complete(task.id, "w1", {"late": True}, token=stale) is None
    assert not tasks.handoff(task.id, "w1", "code", "developer", token=stale)
    assert not tasks.request_approval(task.id, "deploy", {}, owner="w1", token=stale)
    assert not tasks.transition(task.id, TaskStatus.FAILED, expected=TaskStatus.IN_PROGRESS, owner="w1", token=stale)
    assert not tasks.release(task.id, "w1", "late", token=stale)
    assert tasks.approvals("pending") == []
    assert tasks.get(task.id).status == TaskStatus.IN_PROGRESS
    assert tasks.complete(task.id, "w1", {"ok": True}, token=second.lease_token) == []
    assert tasks.get(task.id).result == {"ok": True}


def test_stalled_attempt_is_reclaimed_without_waiting_for_task_timeout(tmp_path):
    tasks = TaskStore(Database(tmp_path / "t.db"))
    task = tasks.create("analysis", "Quiet")
    claimed = tasks.claim(task.id, "w1", 3600)
    assert tasks.expired_leases(3, stall_seconds=60) == ([], [])
    tasks.db.execute("UPDATE tasks SET heartbeat_at = '2000-01-01T00:00:00+00:00' WHERE id = ?", (task.id,))
    assert tasks.expired_leases(3, stall_seconds=60) == ([task.id], [])
    assert "stalled" in tasks.get(task.id).error
    assert not tasks.renew_lease(task.id, "w1", claimed.lease_token)


@pytest.mark.timeout(120)
# The stall_timeout variant runs in the slow step: the daemon's reclaim is the same (reclaim_stuck ->
# expired_leases, fenced the same way) as in the task_timeout variant, and the stall condition itself is
# test_stalled_attempt_is_reclaimed_without_waiting_for_task_timeout above.
@pytest.mark.parametrize("limit", [{"task_timeout": 8},
                                   pytest.param({"task_timeout": 600, "stall_timeout": 6}, marks=pytest.mark.slow)],
                         ids=["task_timeout", "stall_timeout"])
def test_attempt_hung_past_its_limit_cannot_merge_or_deploy_after_its_replacement(holding_review, build, limit):
    fake = holding_review
    app = build(fake, {"orchestrator": {**limit, "max_task_attempts": 3},
                       "llm": {"timeout": 120, "max_retries": 0},
                       "deployment": {"enabled": True, "type": "ci_cd"}})
    task = app.orchestrator.submit_task("code", **code_task_payload())
    wait_for(fake.held.is_set, timeout=60, message="the first review is held (the model hangs)")
    hung = app.orchestrator.supervisor.worker_running(task.id)
    assert hung is not None and hung.lease is not None
    # task_timeout ends that attempt; a new developer worker redoes the stage, merges and deploys.
    wait_for(lambda: app.tasks.get(task.id).status == TaskStatus.COMPLETED, timeout=90,
             message="the task completed by the replacement attempt")
    assert hung.retired.is_set() and hung.lease is not None and hung.lease.cancelled.is_set()
    # Now the hung model answers "approve": the abandoned attempt would commit, merge and deploy.
    fake.release.set()
    hung.thread.join(30)
    assert not hung.thread.is_alive()
    assert len(merges_for(app, task.id)) == 1
    assert len(deploys(app)) == 1
    lost = [e for e in events(app) if e["event"] == "lease_lost" and e.get("task_id") == task.id]
    assert lost, "the abandoned attempt was refused with lease_lost"
    stuck = [e for e in events(app) if e["event"] == "task_stuck" and e.get("task_id") == task.id]
    assert stuck and stuck[0]["action"] == "requeued"
    wait_for(lambda: app.db.query("SELECT level FROM alerts WHERE name = 'task_stuck' AND task_id = ?", (task.id,)),
             message="the stuck task is a stored alert")
    reclaimed = app.db.query("SELECT details FROM activity_logs WHERE task_id = ? AND activity = 'lease_lost'",
                             (task.id,))
    assert reclaimed
    assert app.tasks.get(task.id).status == TaskStatus.COMPLETED
    activities = [a["activity"] for a in app.memory.activities(task.id)]
    assert activities.count("code_committed") == 1 and activities.count("deployed") == 1


@pytest.mark.timeout(120)
def test_lease_stolen_between_review_and_merge_is_refused_at_the_commit(holding_review, build):
    fake = holding_review
    app = build(fake, {"orchestrator": {"task_timeout": 600},
                       "llm": {"timeout": 120, "max_retries": 0},
                       "agents": {"developer": {"workers": 2}},
                       "deployment": {"enabled": True, "type": "ci_cd"}})
    task = app.orchestrator.submit_task("code", **code_task_payload())
    wait_for(fake.held.is_set, timeout=60, message="the first review is held")
    first = app.orchestrator.supervisor.worker_running(task.id)
    assert first is not None
    # Another claimant takes the task over (the lease is released behind the first attempt's back,
    # and the other developer worker claims it with a new fencing token).
    row = app.db.query_one("SELECT lease_owner, lease_token FROM tasks WHERE id = ?", (task.id,))
    assert app.tasks.release(task.id, row["lease_owner"], "taken over by the test")
    wait_for(lambda: app.tasks.get(task.id).status == TaskStatus.COMPLETED, timeout=90,
             message="completed by the second developer worker")
    assert app.tasks.get(task.id).lease_token == row["lease_token"] + 3  # then the code, merge and release stages
    fake.release.set()  # the first attempt's review arrives: approve
    wait_for(lambda: first.current_task is None, timeout=30, message="the first attempt gave up")
    assert len(merges_for(app, task.id)) == 1 and len(deploys(app)) == 1
    lost = [e for e in events(app) if e["event"] == "lease_lost" and e.get("task_id") == task.id]
    assert lost
    activities = [a["activity"] for a in app.memory.activities(task.id)]
    assert activities.count("code_committed") == 1 and "lease_lost" in activities


def test_an_attempt_that_lost_its_lease_leaves_the_worktree_to_the_attempt_that_holds_it(fake_llm, build, tmp_path):
    """The first attempt waits for its review (held) while the task is taken over; the second attempt takes the
    same worktree and asks for its code (held until the first attempt has given up). The first attempt's review
    then comes, and it stops at its next side effect: the worktree, the second attempt's now, stays."""
    fake_llm.set_script(Script.from_data({"rules": story_rules(CodeChange=FIXED)}))
    app = build(fake_llm, {"agents": {"developer": {"workers": 2}}}, start=False)
    taken_over, answer_review, second_asked = threading.Event(), threading.Event(), threading.Event()
    task_id: list[str] = []

    def gave_up() -> bool:  # the first attempt's worker discarded its result (after what it did on LeaseLost)
        return any(e["event"] == "lease_lost" and e.get("action") == "result discarded"
                   and e.get("task_id") == task_id[0] for e in events(app))

    def code_answer() -> bool:
        if taken_over.is_set():
            second_asked.set()
            return gave_up()
        return True

    fake_llm.hold("Review", until=answer_review.is_set)
    fake_llm.hold("CodeChange", until=code_answer)
    app.start()
    task = app.orchestrator.submit_task("code", **code_task_payload())
    task_id.append(task.id)
    # The first attempt's tests passed and its merge candidate was tested: it waits for the review alone.
    wait_for(lambda: [e for e in events(app) if e["event"] == "merge_queue_tested_while_reviewed"
                      and e.get("task_id") == task.id], timeout=60, message="the first attempt waits for its review")
    row = app.db.query_one("SELECT lease_owner, lease_token FROM tasks WHERE id = ?", (task.id,))
    assert app.tasks.release(task.id, row["lease_owner"], "taken over by the test")
    taken_over.set()
    wait_for(second_asked.is_set, timeout=60, message="the second attempt, in the worktree, asks for its code")
    answer_review.set()
    wait_for(lambda: app.tasks.get(task.id).status in (TaskStatus.COMPLETED, TaskStatus.FAILED), timeout=90,
             message="the task settled")
    done = app.tasks.get(task.id)
    assert done.status == TaskStatus.COMPLETED, done.error
    kept = [e for e in events(app) if e["event"] == "worktree_kept" and e.get("task_id") == task.id]
    assert kept and gave_up()
    assert len(merges_for(app, task.id)) == 1
    assert len(merge_commits_green(app.live.current.file_system.workspace_path, tmp_path)) == 1


SLEEPING_TESTS = ("import importlib.util\nimport time\n\n"
                  "if importlib.util.find_spec('textutils') is not None:\n"
                  "    time.sleep(600)  # hangs once the code exists: the Developer's run never ends\n\n")


@pytest.mark.timeout(120)
def test_task_timeout_kills_the_steps_test_processes(fake_llm, build):
    rules = story_rules(CodeChange=FIXED, EscalationDecision={"action": "drop", "reasoning": "hangs"})
    suite = next(r for r in rules if r["when"].get("schema") == "TestSuite")
    suite["reply"]["test_code"] = SLEEPING_TESTS + suite["reply"]["test_code"]
    fake_llm.set_script(Script.from_data({"rules": rules}))
    app = build(fake_llm, {"orchestrator": {"task_timeout": 6, "max_task_attempts": 1},
                           "testing": {"timeout": 600}})
    task = app.orchestrator.submit_task("code", **code_task_payload())
    wait_for(lambda: (w := app.orchestrator.supervisor.worker_running(task.id)) and w.role.value == "developer",
             timeout=60, message="the developer runs the tests")
    worker = app.orchestrator.supervisor.worker_running(task.id)
    killed = wait_for(lambda: [e for e in events(app) if e["event"] == "attempt_processes_killed"
                               and e.get("task_id") == task.id], timeout=60, message="the test run killed")
    worker.thread.join(60)  # the test run ends with the kill, not after testing.timeout (600 s)
    assert not worker.thread.is_alive()
    from ai_agents.orchestrator.lease import _alive
    assert killed[0]["pids"] and not [pid for pid in killed[0]["pids"] if _alive(pid)]
    wait_for(lambda: app.tasks.get(task.id).status == TaskStatus.FAILED, timeout=30,
             message="escalated, then dropped by the CEO's queued decision")
    assert merges_for(app, task.id) == []
    activities = [a["activity"] for a in app.memory.activities(task.id)]
    assert "code_committed" not in activities


def test_a_pause_keeps_the_lease_renewed_and_an_ended_attempt_stops_it_at_once(tmp_path):
    tasks = TaskStore(Database(tmp_path / "t.db"))
    task = tasks.create("analysis", "Waiting its turn")
    claimed = tasks.claim(task.id, "w1", 60)
    assert claimed is not None
    lease = Lease(tasks, task.id, "w1", claimed.lease_token, beat_every=0.05)

    def heartbeat() -> str:
        return str(tasks.db.query_one("SELECT heartbeat_at FROM tasks WHERE id = ?", (task.id,))["heartbeat_at"])

    before = heartbeat()
    lease.pause(0.3)  # the back-off of a task that lost a race renews its lease: it is not stalled
    assert heartbeat() > before
    ended = threading.Timer(0.2, lease.cancel, args=("interrupted by shutdown",))
    ended.start()
    waited = threading.Event()

    def paused() -> None:
        with pytest.raises(LeaseLost, match="interrupted by shutdown"):
            lease.pause(600)
        waited.set()

    waiter = threading.Thread(target=paused)
    waiter.start()
    waiter.join(60)  # a 600 s pause: only the cancel can end it within the join's wait
    assert waited.is_set()
