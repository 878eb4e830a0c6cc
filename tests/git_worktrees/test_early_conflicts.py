"""Early conflict detection (``git.catch_up``): before a Developer attempt, a branch whose base fell
behind main by changes to files the task touches is brought up to date (rebase or merge, as
``git.integration`` says), and a conflict between the attempt and main goes to the Developer with
its hunks at once, not after the attempt, review and queue run. Through the real daemon.
"""

from __future__ import annotations

import pytest

from ai_agents.domain import TaskStatus
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
