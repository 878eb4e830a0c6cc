"""A suite that passes where a waiting branch is tested ahead and fails in the merge queue's own run.

The merge queue tests a waiting branch ahead, on top of the candidate in front of it (merge_queue.py). A
model that wants its task merged could make its tests pass wherever they run except in the queue's own
worktree: the branch in front never merges, and the green run ahead of the one behind, on top of that red
candidate, must count for nothing. Through the real daemon (tests/pipeline/test_merge_queue_ahead.py)."""

from __future__ import annotations

from ai_agents.domain import TaskStatus
from tests.mainline import merge_commits_green
from tests.pipeline.test_merge_queue_ahead import events, not_ok, queue_rows, run


def test_a_green_run_ahead_of_a_branch_that_does_not_merge_counts_for_nothing(fake_llm, build, tmp_path):
    # Alpha's suite fails in the queue's own worktree only: alpha never merges, while beta's run on top of
    # alpha's candidate (in its own worktree) is green.
    # Alpha's two runs in the queue (the second is the flaky retry) hold it for 2 x 1.5 s: beta arrives meanwhile.
    app, alpha, beta = run(fake_llm, build, fails_in="merge-queue", pause=1.5)
    assert alpha.status in (TaskStatus.FAILED, TaskStatus.ESCALATED)  # sent back until its budget ran out
    assert beta.status == TaskStatus.COMPLETED, beta.error
    ws = app.live.current.file_system.workspace_path
    rows = queue_rows(app)
    ahead = events(app, "merge_queue_pretested", beta.id)
    assert ahead and ahead[0]["green"]
    # Beta was built and tested again on main, and merged without alpha's candidate under it.
    assert [e["ahead"] for e in events(app, "merge_queue_tested", beta.id)][-1] is False
    assert rows[beta.id]["merged_sha"] != ahead[0]["candidate"]
    assert not_ok(ws, "merge-base", "--is-ancestor", ahead[0]["base"], "main")  # alpha's candidate never on main
    assert not_ok(ws, "cat-file", "-e", "main:alpha.py")  # nothing of alpha's on main
    assert len(merge_commits_green(ws, tmp_path)) == 1
