"""Test-first code writing end to end through the real SDK against the fake LLM server."""

from __future__ import annotations

import json
import subprocess

import yaml

from ai_agents.domain import TaskStatus, TaskType
from tests.conftest import wait_for
from tests.pipeline.conftest import DEMO_SCRIPT, code_task_payload, story_script

DEMO_RULES = yaml.safe_load(DEMO_SCRIPT.read_text())["rules"]
DEV_VERSIONS = next(r for r in DEMO_RULES if r["when"]["schema"] == "CodeChange")["replies"]
BUGGY, FIXED = DEV_VERSIONS


def git(ws, *args: str) -> str:
    return subprocess.run(["git", "-C", str(ws), *args], capture_output=True, text=True, check=True).stdout


def final(app, task_id: str):
    return wait_for(lambda: (t := app.tasks.get(task_id)) and t.status in
                    (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.ESCALATED, TaskStatus.CANCELLED,
                     TaskStatus.AWAITING_APPROVAL) and t, timeout=60, message=f"task {task_id} settled")


def test_story_end_to_end(fake_llm, build):
    fake_llm.set_script(story_script())
    app = build(fake_llm, {"orchestrator": {"generate_when_idle": True, "max_new_tasks": 1},
                           "deployment": {"enabled": True, "type": "ci_cd"}})
    task = wait_for(lambda: next((t for t in app.tasks.list() if t.type == TaskType.CODE), None),
                    message="the CEO generated a code task")
    done = final(app, task.id)
    assert done.status == TaskStatus.COMPLETED, done.error
    ws = app.live.current.file_system.workspace_path

    # git history: QA's tests, then the Developer's code, merged --no-ff by the Tech Lead.
    log = app.workspace.git.log(10)
    merge, code, tests = log[0], log[1], log[2]
    assert merge["author_email"] == "tech_lead@ai-agents.local" and merge["message"].startswith("Merge agents/")
    assert code["author_email"] == "developer@ai-agents.local"
    assert code["message"].startswith("feat(textutils): add slugify helper")
    assert f"Task-Id: {task.id}" in code["message"] and "Agent: Developer" in code["message"]
    assert "Tests: 5 passed" in code["message"]
    assert tests["author_email"] == "qa@ai-agents.local" and tests["message"].startswith("test(textutils):")
    assert "Agent: QA" in tests["message"]
    assert git(ws, "merge-base", "--is-ancestor", tests["sha"], code["sha"]) == ""  # tests before code
    assert git(ws, "show", "--name-only", "--format=", tests["sha"]).split() == ["tests/test_textutils.py"]
    assert git(ws, "show", "--name-only", "--format=", code["sha"]).split() == ["textutils.py"]
    assert len(git(ws, "rev-list", "--parents", "-n1", merge["sha"]).split()) == 3  # a real merge commit
    assert app.workspace.git.current_branch() == "main" and app.workspace.git.is_clean()

    # the tests pass in the workspace
    assert app.workspace.runner.run_tests().passed_count == 5

    # the database tells the same story
    assert done.result["tests_passed"] == 5 and done.result["deploy"]["status"] == "succeeded"
    activities = [a["activity"] for a in app.memory.activities(task.id)]
    for step in ("tests_run_before_code", "tests_committed", "code_tested", "code_reviewed", "code_committed",
                 "branch_merged", "deployed", "task_completed"):
        assert step in activities, step
    assert activities.count("code_tested") == 2  # the first version failed a test, the fix passed
    # The commit is of byte for byte the tree the passing attempt tested: its verdict is reused, not re-run.
    assert activities.count("commit_tests_reused") == 1
    calls = app.db.query("SELECT agent, COUNT(*) AS n FROM llm_calls WHERE task_id = ? GROUP BY agent", (task.id,))
    assert {r["agent"] for r in calls} >= {"qa", "developer", "tech_lead"}
    assert app.memory.decisions(decision_type="task_generation")[0]["decision_data"]["created"] == [task.title]

    # and so do the JSON logs
    events = [json.loads(line) for line in app.live.current.logging.file.read_text().splitlines()]
    mine = {e["event"] for e in events if e.get("task_id") == task.id}
    dev_runs = [e for e in events if e.get("event") == "tests_run" and e.get("task_id") == task.id
                and e.get("agent") == "developer"]
    assert len(dev_runs) == 2  # one run per attempt; none at commit time
    assert {"task_started", "tests_committed", "code_committed", "branch_merged", "deployed",
            "task_completed"} <= mine


def test_three_attempts_then_new_approach_then_escalated_branch_unmerged(fake_llm, build):
    fake_llm.set_script(story_script(CodeChange=BUGGY, EscalationDecision={"action": "drop",
                                                                            "reasoning": "cannot fix"}))
    app = build(fake_llm)
    task = app.orchestrator.submit_task("code", **code_task_payload())
    done = final(app, task.id)
    wait_for(lambda: app.tasks.get(task.id).status == TaskStatus.FAILED, message="dropped after escalation")
    done = app.tasks.get(task.id)
    assert "escalated" not in (done.error or "") and "dropped by the CEO" in done.error
    code_calls = [r for r in fake_llm.requests if "CodeChange" in json.dumps(r.json.get("response_format", {}))]
    assert len(code_calls) == 6  # 2 approaches x (1 version + 2 fixes)
    assert sum("COMPLETELY DIFFERENT" in json.dumps(r.json) for r in code_calls) == 1
    branch = done.payload["branch"]
    assert app.workspace.git.branch_exists(branch)
    assert not app.workspace.git.is_merged(branch, "main")
    assert not (app.live.current.file_system.workspace_path / "textutils.py").exists()
    assert app.memory.decisions(task.id, "escalation")[0]["decision_data"]["action"] == "drop"


def test_developer_cannot_edit_the_tests(fake_llm, build):
    cheat = {"approach": "make the tests trivial", "files": [
        {"path": "tests/test_textutils.py", "content": "def test_nothing():\n    assert True\n"},
        {"path": "conftest.py", "content": "collect_ignore = ['tests']\n"},
        *FIXED["files"]]}
    fake_llm.set_script(story_script(CodeChange=cheat))
    app = build(fake_llm)
    task = app.orchestrator.submit_task("code", **code_task_payload())
    done = final(app, task.id)
    assert done.status == TaskStatus.COMPLETED, done.error
    ws = app.live.current.file_system.workspace_path
    assert "test_rejects_empty_input" in (ws / "tests" / "test_textutils.py").read_text()
    assert not (ws / "conftest.py").exists()
    refused = [a["details"]["refused"] for a in app.memory.activities(task.id) if a["activity"] == "code_tested"]
    assert any("tests/test_textutils.py" in r for rs in refused for r in rs)
    events = [json.loads(line) for line in app.live.current.logging.file.read_text().splitlines()]
    assert any(e["event"] == "write_refused" and e.get("path") == "conftest.py" for e in events)


def test_review_rejection_goes_back_to_the_developer(fake_llm, build):
    fake_llm.set_script(story_script(
        CodeChange=[FIXED, FIXED],
        Review=[{"approve": False, "score": 4, "reasons": ["needs a docstring example"],
                 "issues": ["add a usage example to the docstring"]},
                {"approve": True, "score": 9, "reasons": ["good now"]}]))
    app = build(fake_llm)
    task = app.orchestrator.submit_task("code", **code_task_payload())
    done = final(app, task.id)
    assert done.status == TaskStatus.COMPLETED, done.error
    code_calls = [json.dumps(r.json) for r in fake_llm.requests
                  if "CodeChange" in json.dumps(r.json.get("response_format", {}))]
    assert len(code_calls) == 2 and "add a usage example to the docstring" in code_calls[1]
    reviews = [a["details"]["approve"] for a in app.memory.activities(task.id) if a["activity"] == "code_reviewed"]
    assert reviews == [False, True]


WORD_COUNT_RULES = [
    {"when": {"schema": "TestSuite", "contains": "word_count"}, "reply": {
        "module_path": "wordcount.py", "test_path": "tests/test_wordcount.py",
        "test_code": "from wordcount import word_count\n\n\n"
                     "def test_counts():\n    assert word_count('a b  c') == 3\n"}},
    {"when": {"schema": "CodeChange", "contains": "word_count"}, "reply": {"files": [
        {"path": "wordcount.py", "content": "def word_count(text: str) -> int:\n    return len(text.split())\n"}]}},
]


def test_approval_gated_deploy_approved_and_rejected(fake_llm, build):
    from ai_agents.llm.script import Script
    from tests.pipeline.conftest import story_rules

    fake_llm.set_script(Script.from_data({"rules": WORD_COUNT_RULES + story_rules(CodeChange=FIXED)}))
    app = build(fake_llm, {"deployment": {"enabled": True, "type": "ci_cd"},
                           "approvals": {"required_for": ["deploy"]}})
    first = app.orchestrator.submit_task("code", **code_task_payload())
    assert final(app, first.id).status == TaskStatus.AWAITING_APPROVAL
    assert [a["task_id"] for a in app.tasks.approvals("pending")] == [first.id]
    app.tasks.decide_approval(first.id, approved=True, decided_by="test")
    wait_for(lambda: app.tasks.get(first.id).status == TaskStatus.COMPLETED, message="approved deploy done")
    assert app.tasks.get(first.id).result["deploy"]["status"] == "succeeded"

    second = app.orchestrator.submit_task("code", "Add a word counter to the text utilities",
                                          "textutils.word_count(text) counts words.")
    assert final(app, second.id).status == TaskStatus.AWAITING_APPROVAL
    app.tasks.decide_approval(second.id, approved=False, decided_by="test")
    wait_for(lambda: app.tasks.get(second.id).status == TaskStatus.COMPLETED, message="rejected deploy skipped")
    assert app.tasks.get(second.id).result["deploy"] == "not done: rejected"
    history = app.memory.get_state("deployment")[0]["history"]
    assert len([h for h in history if h["action"] == "deploy"]) == 1


def test_failing_post_deploy_check_rolls_back(fake_llm, build, tmp_path):
    marker, healthy = tmp_path / "server" / "current", tmp_path / "server" / "healthy"
    marker.parent.mkdir()
    fake_llm.set_script(story_script(CodeChange=FIXED, EscalationDecision={"action": "drop", "reasoning": "x"}))
    # The post-deploy check passes only for the commit listed in `healthy`: the new one fails it.
    app = build(fake_llm, {"deployment": {"enabled": True, "type": "direct", "direct": {
        "transport": "local", "deploy_commands": [f"echo {{commit}} > {marker}"],
        "rollback_commands": [f"echo {{commit}} > {marker}"],
        "check_command": f"cmp -s {marker} {healthy}"}}}, start=False)
    good = app.workspace.git.head_sha()
    healthy.write_text(good + "\n")
    app.workspace.deployer.deploy(good)  # a first good deployment to roll back to
    app.start()
    task = app.orchestrator.submit_task("code", **code_task_payload())
    wait_for(lambda: app.tasks.get(task.id).status in (TaskStatus.ESCALATED, TaskStatus.FAILED),
             timeout=60, message="deploy failure escalated")
    assert marker.read_text().strip() == good  # rolled back to the previous good commit
    assert "deployment failed" in (app.tasks.get(task.id).error or "")


def test_a_fingerprint_changes_with_the_bytes_the_commit_and_the_tests_asked_for(fake_llm, build):
    """What lets the commit reuse the attempt's verdict (CodeFlow._commit): equal only for the same tree."""
    app = build(fake_llm, start=False)
    ws = app.workspace
    with ws.on_branch("main"):
        ws.fs.write_file("calc.py", "X = 1\n")
        first = ws.fingerprint(["calc.py"], tests=["tests/test_calc.py"])
        assert ws.fingerprint(["calc.py"], tests=["tests/test_calc.py"]) == first
        assert ws.fingerprint(["calc.py"], tests=["tests/test_other.py"]) != first
        assert ws.fingerprint(["calc.py"], tests=["tests/test_calc.py"], expected=["tests/test_calc.py::t"]) != first
        ws.fs.write_file("calc.py", "X = 2\n")
        assert ws.fingerprint(["calc.py"], tests=["tests/test_calc.py"]) != first
        ws.fs.write_file("calc.py", "X = 1\n")
        assert ws.fingerprint(["calc.py"], tests=["tests/test_calc.py"]) == first
        # The same bytes behind a symlink are not the file that was tested.
        target = ws.fs.workspace_path / "calc.py"
        (ws.fs.workspace_path / "elsewhere.py").write_text("X = 1\n")
        target.unlink()
        target.symlink_to(ws.fs.workspace_path / "elsewhere.py")
        assert ws.fingerprint(["calc.py"], tests=["tests/test_calc.py"]) != first
        target.unlink()
        assert ws.fingerprint(["calc.py"], tests=["tests/test_calc.py"]) != first  # missing
        ws.fs.write_file("calc.py", "X = 1\n")
        assert ws.fingerprint(["calc.py"], tests=["tests/test_calc.py"]) == first
        # Another commit underneath: a different tree, though the file is the same.
        ws.fs.write_file("other.py", "Y = 1\n")
        ws.git.add(["other.py"])
        ws.git.commit("chore: another file", agent="developer", files=["other.py"])
        assert ws.fingerprint(["calc.py"], tests=["tests/test_calc.py"]) != first
