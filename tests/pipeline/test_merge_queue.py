"""The merge queue through the real daemon (in process) and the real SDK against the fake server.

Two tasks race on the same module: each branch is cut from main before the other merges. Main
must only ever move to a merge commit whose whole suite passed; the loser is sent back to the
Developer (with the conflict hunks, or the failures on the current main) and then merges.
"""

from __future__ import annotations

from typing import Any

import pytest

from ai_agents.domain import Role, TaskStatus
from ai_agents.llm.script import Script
from tests.conftest import wait_for
from tests.mainline import git, merge_commits_green
from tests.pipeline.conftest import story_rules

FINAL = (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.ESCALATED, TaskStatus.CANCELLED)


def suite(test_path: str, module_path: str, code: str) -> dict[str, Any]:
    return {"module_path": module_path, "test_path": test_path, "test_code": code,
            "requirements": [], "constraints": []}


def change(path: str, content: str) -> dict[str, Any]:
    return {"approach": "direct", "files": [{"path": path, "content": content}]}


def script(rules: list[dict[str, Any]]) -> Script:
    return Script.from_data({"rules": rules + story_rules()})


def run_two(fake_llm: Any, build: Any, rules: list[dict[str, Any]], first: str, second: str,
            seed: dict[str, str] | None = None, integration: str = "merge",
            catch_up: bool = True) -> tuple[Any, Any, Any]:
    fake_llm.set_script(script(rules))
    app = build(fake_llm, {"git": {"integration": integration, "catch_up": catch_up}}, start=False)
    for path, content in (seed or {}).items():
        app.workspace.write_document(path, content, Role.DEVELOPER, f"seed {path}")
    app.start()
    a = app.orchestrator.submit_task("code", first, f"{first}: see the tests.")
    b = app.orchestrator.submit_task("code", second, f"{second}: see the tests.")
    for t in (a, b):
        wait_for(lambda t=t: app.tasks.get(t.id).status in FINAL, timeout=120, message=f"task {t.id} final")
    return app, app.tasks.get(a.id), app.tasks.get(b.id)


def queue_rows(app: Any) -> dict[str, dict[str, Any]]:
    return {r["task_id"]: r for r in app.db.query("SELECT * FROM merge_queue")}


STRIP_TEST = "from fmt import fmt\n\n\ndef test_strips():\n    assert fmt(' a ') == 'a'\n"
UPPER_TEST = "from fmt import fmt\n\n\ndef test_upper():\n    assert fmt('a', upper=True) == 'A'\n"
STRIP_CODE = "def fmt(s):\n    return s.strip()\n"
UPPER_CODE = "def fmt(s, upper=False):\n    return s.upper() if upper else s\n"
BOTH_CODE = "def fmt(s, upper=False):\n    s = s.strip()\n    return s.upper() if upper else s\n"


@pytest.mark.parametrize("integration", ["merge", "rebase"])
def test_conflicting_tasks_one_merges_the_other_is_sent_back_with_the_conflict_then_merges(
        fake_llm, build, tmp_path, integration):
    rules = [
        {"when": {"schema": "TestSuite", "contains": "STRIPTASK"},
         "reply": suite("tests/test_fmt_strip.py", "fmt.py", STRIP_TEST)},
        {"when": {"schema": "TestSuite", "contains": "UPPERTASK"},
         "reply": suite("tests/test_fmt_upper.py", "fmt.py", UPPER_TEST)},
        {"when": {"schema": "CodeChange", "contains": ["UPPERTASK", "Conflict hunks"]},
         "reply": change("fmt.py", BOTH_CODE)},
        {"when": {"schema": "CodeChange", "contains": "UPPERTASK"}, "reply": change("fmt.py", UPPER_CODE)},
        {"when": {"schema": "CodeChange", "contains": "STRIPTASK"}, "reply": change("fmt.py", STRIP_CODE)},
    ]
    # Without the early catch-up (tests/git_worktrees/test_early_conflicts.py): the queue finds the conflict.
    app, a, b = run_two(fake_llm, build, rules, "STRIPTASK fmt strips", "UPPERTASK fmt upper option",
                        integration=integration, catch_up=False)
    assert a.status == TaskStatus.COMPLETED, a.error
    assert b.status == TaskStatus.COMPLETED, b.error
    ws = app.live.current.file_system.workspace_path
    assert (ws / "fmt.py").read_text() == BOTH_CODE
    sent_back = [x["details"] for x in app.memory.activities(b.id) if x["activity"] == "sent_back_by_merge_queue"]
    assert [s["reason"] for s in sent_back] == ["conflict"]
    assert "<<<<<<<" in sent_back[0]["feedback"][0] and "fmt.py" in sent_back[0]["feedback"][0]
    # The Developer was asked again with the hunks in its prompt.
    assert any("Conflict hunks" in str(r.json) and "UPPERTASK" in str(r.json) for r in fake_llm.requests)
    rows = queue_rows(app)
    assert rows[a.id]["state"] == rows[b.id]["state"] == "merged"
    assert rows[b.id]["returns"] == 1
    # One merge per task on main's first-parent line, each a tested --no-ff merge.
    merges = [c for c in git(ws, "log", "--first-parent", "--merges", "--format=%H %(trailers:key=Task-Id,"
                                                                         "valueonly,separator=)", "main").split("\n")
              if c.strip()]
    assert sorted(m.split()[1] for m in merges) == sorted([a.id, b.id])
    assert len(merge_commits_green(ws, tmp_path)) == 2
    assert git(ws, "worktree", "list", "--porcelain").count("worktree ") == 2  # main + the queue's
    assert not git(ws, "stash", "list").strip()


GREET_TEST = "from greet import greet\n\n\ndef test_greets():\n    assert greet('bob') == 'hi bob'\n"
SHOUT_TEST = "from fmt import fmt\n\n\ndef test_shouts():\n    assert fmt('a') == 'A'\n"


def test_green_on_a_stale_base_red_on_current_main_is_never_merged(fake_llm, build, tmp_path):
    rules = [
        {"when": {"schema": "TestSuite", "contains": "SHOUTTASK"},
         "reply": suite("tests/test_fmt_shout.py", "fmt.py", SHOUT_TEST)},
        {"when": {"schema": "TestSuite", "contains": "GREETTASK"},
         "reply": suite("tests/test_greet.py", "greet.py", GREET_TEST)},
        {"when": {"schema": "CodeChange", "contains": ["GREETTASK", "full suite failed"]},
         "reply": change("greet.py", "def greet(name):\n    return 'hi ' + name\n")},
        {"when": {"schema": "CodeChange", "contains": "GREETTASK"},
         "reply": change("greet.py", "from fmt import fmt\n\n\ndef greet(name):\n    return 'hi ' + fmt(name)\n")},
        {"when": {"schema": "CodeChange", "contains": "SHOUTTASK"},
         "reply": change("fmt.py", "def fmt(s):\n    return s.upper()\n")},
    ]
    app, a, b = run_two(fake_llm, build, rules, "SHOUTTASK fmt shouts", "GREETTASK greet people",
                        seed={"fmt.py": "def fmt(s):\n    return s\n"})
    assert a.status == TaskStatus.COMPLETED, a.error
    assert b.status == TaskStatus.COMPLETED, b.error
    sent_back = [x["details"] for x in app.memory.activities(b.id) if x["activity"] == "sent_back_by_merge_queue"]
    assert [s["reason"] for s in sent_back] == ["red"]
    assert "test_greets" in sent_back[0]["feedback"][0]
    ws = app.live.current.file_system.workspace_path
    assert len(merge_commits_green(ws, tmp_path)) == 2  # main was never red
    assert queue_rows(app)[b.id]["test_seconds"] is not None
