"""Early conflict detection (``git.catch_up``): before a Developer attempt, a branch whose base fell
behind main by changes to files the task touches is brought up to date (rebase or merge, as
``git.integration`` says), and a conflict between the attempt and main goes to the Developer with
its hunks at once, not after the attempt, review and queue run. Through the real daemon.
"""

from __future__ import annotations

import pytest

from ai_agents.domain import Role, TaskStatus, TaskType
from tests.mainline import git, merge_commits_green
from tests.pipeline.test_merge_queue import (
    BOTH_CODE,
    STRIP_CODE,
    STRIP_TEST,
    UPPER_CODE,
    UPPER_TEST,
    change,
    queue_rows,
    run_two,
    suite,
)


@pytest.mark.parametrize("integration", ["merge", pytest.param("rebase", marks=pytest.mark.slow)])
def test_a_branch_behind_main_in_its_files_is_caught_up_and_the_conflict_sent_before_the_queue(
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
    app, a, b = run_two(fake_llm, build, rules, "STRIPTASK fmt strips", "UPPERTASK fmt upper option",
                        integration=integration)
    assert a.status == TaskStatus.COMPLETED, a.error
    assert b.status == TaskStatus.COMPLETED, b.error
    ws = app.live.current.file_system.workspace_path
    assert (ws / "fmt.py").read_text() == BOTH_CODE
    caught = {t.id: [x["details"] for x in app.memory.activities(t.id) if x["activity"] == "caught_up_with_main"]
              for t in (a, b)}
    assert caught[a.id] == []  # a's branch was not behind main in its files
    assert [c["conflicts"] for c in caught[b.id]] == [["fmt.py"]]
    # The Developer saw the hunks of its change against main's fmt.py; the queue never sent b back.
    hunks = [r for r in fake_llm.requests if "UPPERTASK" in str(r.json) and "Conflict hunks" in str(r.json)]
    assert hunks and "<<<<<<< your change" in str(hunks[0].json) and "s.strip()" in str(hunks[0].json)
    assert not [x for x in app.memory.activities(b.id) if x["activity"] == "sent_back_by_merge_queue"]
    rows = queue_rows(app)
    assert rows[a.id]["returns"] == rows[b.id]["returns"] == 0
    # b's branch already held a's merge when its Developer committed; main green at both merges.
    merges = merge_commits_green(ws, tmp_path)
    assert len(merges) == 2
    git(ws, "merge-base", "--is-ancestor", merges[1], f"{merges[0]}^2")


TWO = "def a():\n    return 1\n\n\ndef b():\n    return 2\n"
MAIN_A = TWO.replace("return 1", "return 10")   # main changed a()
TASK_B = TWO.replace("return 2", "return 20")   # the attempt changes b(), written against the old base
TASK_A = TWO.replace("return 1", "return 11")   # the attempt changes a() too: a conflict


@pytest.mark.parametrize("integration", ["merge", "rebase"])
def test_catch_up_merges_the_attempts_files_onto_mains_and_reports_real_conflicts(fake_llm, build, integration):
    app = build(fake_llm, {"git": {"integration": integration}}, start=False)
    git_ = app.workspace.git
    app.workspace.write_document("fmt.py", TWO, Role.DEVELOPER, "seed fmt")
    task = app.tasks.create(TaskType.CODE, "change b")
    qa = git_.commit_onto(git_.rev("main"), {"tests/test_b.py": "def test_b():\n    pass\n"}, "tests",
                          agent=Role.QA, trailers={"Task-Id": task.id, "Agent": "QA"})
    branch = f"agents/{task.id}-change-b"
    git_.create_branch(branch, from_ref=qa)
    q = app.orchestrator.flows[TaskType.CODE].queue
    assert q.catch_up(task, branch, {"other.py": "x = 1\n"}) is None  # main has not moved
    app.workspace.write_document("fmt.py", MAIN_A, Role.DEVELOPER, "main changes a")
    assert q.catch_up(task, branch, {"other.py": "x = 1\n"}) is None  # moved, but not in the task's files
    assert not git_.is_ancestor(git_.rev("main"), git_.rev(branch))

    clean = q.catch_up(task, branch, {"fmt.py": TASK_B})
    assert clean is not None and clean.files == ["fmt.py"] and not clean.conflicts
    assert clean.merged["fmt.py"] == MAIN_A.replace("return 2", "return 20")  # both changes kept
    assert git_.is_ancestor(git_.rev("main"), git_.rev(branch))  # the branch holds main now
    assert git_.file_at(branch, "tests/test_b.py") is not None  # and still QA's commit
    assert q.catch_up(task, branch, {"fmt.py": TASK_B}) is None  # up to date: nothing more to do

    app.workspace.write_document("fmt.py", MAIN_A.replace("return 10", "return 12"), Role.DEVELOPER, "main again")
    clashing = q.catch_up(task, branch, {"fmt.py": TASK_A})
    assert clashing is not None and clashing.conflicts == ["fmt.py"] and not clashing.merged
    assert "<<<<<<< your change" in clashing.hunks and ">>>>>>> main" in clashing.hunks
    assert "Conflict hunks" in clashing.feedback("main")
    assert git_.is_ancestor(git_.rev("main"), git_.rev(branch))


def test_after_a_catch_up_merge_the_tasks_own_commits_are_still_found_behind_many_of_mains(fake_llm, build):
    app = build(fake_llm, {"git": {"integration": "merge"}}, start=False)
    git_ = app.workspace.git
    task = app.tasks.create(TaskType.CODE, "change b")
    qa = git_.commit_onto(git_.rev("main"), {"tests/test_b.py": "def test_b():\n    pass\n"}, "tests",
                          agent=Role.QA, trailers={"Task-Id": task.id, "Agent": "QA"})
    branch = f"agents/{task.id}-change-b"
    git_.create_branch(branch, from_ref=qa)
    main = git_.rev("main")
    for i in range(60):  # other tasks' work lands on main meanwhile, the last in the task's module
        main = git_.commit_onto(main, {f"mod{i}.py" if i < 59 else "fmt.py": f"X = {i}\n"}, f"work {i}",
                                agent=Role.DEVELOPER, trailers={"Task-Id": f"other{i:08d}", "Agent": "Developer"})
    git_.move_branch("main", main, git_.rev("main"))
    caught = app.orchestrator.flows[TaskType.CODE].queue.catch_up(task, branch, {"fmt.py": "X = 'mine'\n"})
    assert caught is not None and git_.is_ancestor(main, git_.rev(branch))
    assert app.workspace.task_commits(branch, task.id) == {"QA": qa}  # what a restart resumes from
