"""The Developer's ``request_dependency`` tool, in tool mode, through the real daemon and pipeline: the same
gate as the whole-file path (deny, allow, approval), attrs installed from the Python index into the
project's environment, the lock file committed.

Needs the Python package index; SKIPS with the reason when it is unreachable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ai_agents.domain import TaskStatus
from ai_agents.llm.script import Script
from ai_agents.memory.approvals import decide_approval
from tests.agents_tools.support import tool_results
from tests.conftest import wait_for
from tests.deps.test_project_deps import SETTLED, git, pypi, rules  # noqa: F401 - the fixture

TOOLS = {"agents": {"tools": {"enabled": True}}}


def request(name: str, version: str, why: str) -> dict[str, Any]:
    return {"tool_calls": [{"name": "request_dependency",
                            "arguments": {"name": name, "version": version, "ecosystem": "python", "why": why}}]}


def developer_rules(replies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = rules()
    scripted = next(r for r in out if r["when"]["schema"] == "tools" and "senior Python" in r["when"]["contains"])
    scripted["replies"] = replies
    return out


def scripted_developer() -> list[dict[str, Any]]:
    rule = next(r for r in rules() if r["when"]["schema"] == "tools" and "senior Python" in r["when"]["contains"])
    return rule["replies"]


def start(fake_llm, build, extra: dict[str, Any], developer: list[dict[str, Any]]) -> tuple[Any, Any]:
    fake_llm.set_script(Script.from_data({"rules": developer_rules(developer)}))
    app = build(fake_llm, {**TOOLS, **extra})
    task = app.orchestrator.submit_task("code", title="Add an immutable Point type",
                                        description="geometry.Point with distance_to")
    return app, task


def settle(app: Any, task_id: str) -> Any:
    return wait_for(lambda: (t := app.tasks.get(task_id)) and t.status in SETTLED and t, timeout=150,
                    message="the task settled")


def test_allowed_package_through_the_tool_denied_one_refused(fake_llm, build, pypi):  # noqa: F811
    app, task = start(fake_llm, build, {"dependencies": {"allow": ["attrs", "evil-*"], "deny": ["evil-*"]}},
                      [request("evil-pkg", "1.0", "x"), *scripted_developer()])
    done = settle(app, task.id)
    assert done.status == TaskStatus.COMPLETED, done.error
    told = tool_results(fake_llm, "developer")
    assert any("evil-pkg is denied by dependencies.deny" in r for r in told)
    assert any(r.startswith("installed attrs==23.2.0") for r in told)
    ws = Path(app.live.current.file_system.workspace_path)
    code = app.workspace.git.log(3)[1]
    assert sorted(git(ws, "show", "--name-only", "--format=", code["sha"]).split()) == [
        "geometry.py", "requirements.lock", "requirements.txt"]
    assert "attrs==23.2.0 --hash=sha256:" in (ws / "requirements.lock").read_text()
    assert "evil" not in (ws / "requirements.txt").read_text()
    installed = [a["details"] for a in app.memory.activities(task.id) if a["activity"] == "dependency_installed"]
    assert len(installed) == 1 and installed[0]["packages"][0]["version"] == "23.2.0"  # installed once
    assert done.result["tests_passed"] == 6  # QA's tests: the pinned attrs, read-only env, no network


# Slow step: the approval wait on the same gate is in the default suite through the whole-file path
# (test_project_deps.py::test_unlisted_package_waits_for_approval_then_installs), the tool path above.
@pytest.mark.slow
def test_unlisted_package_through_the_tool_waits_then_installs(fake_llm, build, pypi):  # noqa: F811
    # No run_tests before finish: the package is not there until a human approves it.
    developer = [r for r in scripted_developer() if r["tool_calls"][0]["name"] != "run_tests"]
    app, task = start(fake_llm, build, {"approvals": {"required_for": ["dependency"]}}, developer)
    waiting = settle(app, task.id)
    assert waiting.status == TaskStatus.AWAITING_APPROVAL, waiting.error
    (pending,) = app.tasks.approvals()
    assert pending["action"] == "dependency" and pending["details"]["packages"][0]["name"] == "attrs"
    assert any("a human must approve it" in r for r in tool_results(fake_llm, "developer"))
    env = app.live.current.memory.database_path.parent / "project-env"
    assert not list(env.glob("lib/python*/site-packages/attrs*"))
    assert decide_approval(app.tasks, app.memory, task.id, approved=True, decided_by="test") is not None
    app.orchestrator.dispatch()
    done = wait_for(lambda: (t := app.tasks.get(task.id)) and t.status in
                    (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.ESCALATED) and t, timeout=150,
                    message="the approved task finished")
    assert done.status == TaskStatus.COMPLETED, done.error
    assert list(env.glob("lib/python*/site-packages/attrs-23.2.0.dist-info"))
    assert "attrs==23.2.0 --hash=sha256:" in (Path(app.live.current.file_system.workspace_path)
                                                / "requirements.lock").read_text()
