"""A suite that passes where a waiting branch is tested ahead and fails in the merge queue's own run.

The merge queue tests a waiting branch ahead, on top of the candidate in front of it (merge_queue.py). A
model that wants its task merged could make its tests pass wherever they run except in the queue's own
worktree: the branch in front never merges, and the green run ahead of the one behind, on top of that red
candidate, must count for nothing. Through the real daemon (tests/pipeline/test_merge_queue_ahead.py)."""

from __future__ import annotations

import pytest

from ai_agents.domain import TaskStatus
from tests.mainline import git, merge_commits_green
from tests.pipeline.test_merge_queue_ahead import events, not_ok, queue_rows, run, train


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


@pytest.mark.slow
def test_a_green_run_on_a_candidate_whose_own_run_is_red_counts_for_nothing(fake_llm, build, tmp_path):
    """The merge train: gamma is tested on beta's candidate while beta's run ahead goes on, and that run is red
    (beta's tests fail only there). Gamma's green run on that candidate must not carry gamma into main: beta is
    rebuilt and tested on main, and gamma merges only on a base that is main, every merge green."""
    app, (alpha, beta, gamma), ahead = train(fake_llm, build, beta_red_ahead=True)
    assert all(t.status == TaskStatus.COMPLETED for t in (alpha, beta, gamma)), [t.error for t in (alpha, beta, gamma)]
    red = [c for task, _, c, green in ahead if task == beta.id and not green]
    gamma_on_red = [c for task, base, c, green in ahead if task == gamma.id and base in red and green]
    assert red and gamma_on_red, ahead  # the attack happened: a green run ahead on top of a red candidate
    ws = app.live.current.file_system.workspace_path
    rows = queue_rows(app)
    # Beta was built and tested again, in the queue's own run on main, before it merged.
    assert any(not e["ahead"] and e.get("outcome") == "passed" for e in events(app, "merge_queue_tested", beta.id))
    # Gamma merged on top of beta's merge, with a green run on exactly that base: ahead on it, or on main.
    beta_merged, gamma_merged = rows[beta.id]["merged_sha"], rows[gamma.id]["merged_sha"]
    assert git(ws, "rev-parse", f"{gamma_merged}^1").strip() == beta_merged
    gamma_green_ahead = {(c, base) for task, base, c, green in ahead if task == gamma.id and green}
    gamma_on_main = not events(app, "merge_queue_tested", gamma.id)[-1]["ahead"]
    assert (gamma_merged, beta_merged) in gamma_green_ahead or gamma_on_main
    assert len(merge_commits_green(ws, tmp_path)) == 3
