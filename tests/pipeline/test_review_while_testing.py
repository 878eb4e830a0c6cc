"""The Tech Lead reviews an attempt's code while its tests run (pipeline._attempt).

A commit needs both the pass and the approval. When the tests fail, the review that ran meanwhile is not
thrown away: a rejection goes back to the Developer together with the failures, in one fix prompt. The
review is asked on the files as proposed, before they are written; the one that counts is of exactly what
was written."""

from __future__ import annotations

from ai_agents.domain import TaskStatus
from tests.conftest import wait_for
from tests.mainline import git
from tests.pipeline.test_merge_queue import change, script, suite

TEST = "from calc import double\n\n\ndef test_double():\n    assert double(2) == 4\n"
BUGGY = "def double(x):  # BUGGY\n    return x + 1\n"
FIXED = "def double(x):\n    return x * 2\n"


def test_a_failing_attempt_goes_back_with_its_failures_and_the_review_made_meanwhile(fake_llm, build):
    fake_llm.set_script(script([
        {"when": {"schema": "TestSuite", "contains": "DOUBLETASK"},
         "reply": suite("tests/test_calc.py", "calc.py", TEST)},
        {"when": {"schema": "CodeChange", "contains": ["DOUBLETASK", "The tests fail"]},
         "reply": change("calc.py", FIXED)},
        {"when": {"schema": "CodeChange", "contains": "DOUBLETASK"}, "reply": change("calc.py", BUGGY)},
        {"when": {"schema": "Review", "contains": "BUGGY"},
         "reply": {"approve": False, "score": 3, "reasons": ["wrong"], "issues": ["double adds one: MARKER-ISSUE"]}},
    ]))
    app = build(fake_llm)
    task = app.orchestrator.submit_task("code", "DOUBLETASK double", "DOUBLETASK: see the tests.")
    done = wait_for(lambda: (t := app.tasks.get(task.id)) and t.status in (TaskStatus.COMPLETED, TaskStatus.FAILED)
                    and t, timeout=90, message="the task settled")
    assert done.status == TaskStatus.COMPLETED, done.error
    reviews = [a["details"] for a in app.memory.activities(task.id) if a["activity"] == "code_reviewed"]
    assert [r["approve"] for r in reviews] == [False, True]  # the failing attempt was reviewed too
    fix = [r for r in fake_llm.requests if "The tests fail" in str(r.json) and "DOUBLETASK" in str(r.json)]
    assert fix and "MARKER-ISSUE" in str(fix[0].json)  # failures and the rejection in one prompt
    ws = app.live.current.file_system.workspace_path
    assert git(ws, "show", "main:calc.py") == FIXED


def test_a_review_of_files_not_all_written_is_asked_again_on_what_was_written(fake_llm, build):
    """The Developer also rewrites QA's test (refused): the review asked before the writes saw that file; the
    review that decides is asked again on calc.py alone."""
    fake_llm.set_script(script([
        {"when": {"schema": "TestSuite", "contains": "DOUBLETASK"},
         "reply": suite("tests/test_calc.py", "calc.py", TEST)},
        {"when": {"schema": "CodeChange", "contains": "DOUBLETASK"},
         "reply": {"approach": "direct", "files": [
             {"path": "calc.py", "content": FIXED},
             {"path": "tests/test_calc.py", "content": "def test_double():\n    assert True  # REWRITTEN-BY-DEV\n"}]}},
        {"when": {"schema": "Review", "contains": "REWRITTEN-BY-DEV"},
         "reply": {"approve": False, "score": 1, "reasons": ["rewrites QA's test"], "issues": ["MARKER-EARLY"]}},
        {"when": {"schema": "Review", "contains": "DOUBLETASK"},
         "reply": {"approve": True, "score": 9, "reasons": ["fine"], "issues": []}},
    ]))
    app = build(fake_llm)
    task = app.orchestrator.submit_task("code", "DOUBLETASK double", "DOUBLETASK: see the tests.")
    done = wait_for(lambda: (t := app.tasks.get(task.id)) and t.status in (TaskStatus.COMPLETED, TaskStatus.FAILED)
                    and t, timeout=90, message="the task settled")
    assert done.status == TaskStatus.COMPLETED, done.error
    activities = [a["activity"] for a in app.memory.activities(task.id)]
    assert "review_asked_again" in activities
    # The first review is asked in the background and not waited for, so the two requests may reach the
    # server in either order: one saw the rewritten test (and rejects), the other saw calc.py alone.
    reviews = [str(r.json) for r in fake_llm.requests if "Review this code" in str(r.json)]
    assert len(reviews) == 2
    assert sorted("REWRITTEN-BY-DEV" in r for r in reviews) == [False, True]
    ws = app.live.current.file_system.workspace_path
    assert git(ws, "show", "main:calc.py") == FIXED and git(ws, "show", "main:tests/test_calc.py") == TEST
