"""One git worktree per code task, under the data directory: parallel tasks, removal, the start sweep."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ai_agents.domain import TaskStatus, TaskType
from tests.chaos.scenario import chaos_script, helper_names, submit_code_tasks, task_title
from tests.conftest import wait_for
from tests.mainline import git, merge_commits_green

FINAL = (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.ESCALATED, TaskStatus.CANCELLED)


def events(app: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in app.live.current.logging.file.read_text().splitlines()]


# With the default integration (merge): the strategy only changes the merge step, which the merge-queue
# tests check for both (test_conflicting_tasks_..., with the rebase replay).
def test_parallel_tasks_each_in_its_own_worktree_removed_after_merge(fake_llm, build, tmp_path):
    names = helper_names(4)
    fake_llm.set_script(chaos_script(names))
    fake_llm.delay = 0.1
    app = build(fake_llm, {"agents": {"developer": {"workers": 2}, "qa": {"workers": 2}}})
    ids = [app.orchestrator.submit_task("code", task_title(n), f"{n} brief").id for n in names]
    for task_id in ids:
        wait_for(lambda t=task_id: app.tasks.get(t).status in FINAL, timeout=150, message=f"task {task_id} final")
    assert {app.tasks.get(t).status for t in ids} == {TaskStatus.COMPLETED}
    root = (tmp_path / "data" / "worktrees").resolve()
    created = [e for e in events(app) if e["event"] == "worktree_created"]
    paths = {e["task_id"]: e["path"] for e in created}
    assert set(paths) == set(ids) and len(set(paths.values())) == len(ids)
    assert all(Path(p).resolve().parent == root for p in paths.values())  # under the data directory
    ws = app.live.current.file_system.workspace_path.resolve()
    assert all(not Path(p).resolve().is_relative_to(ws) for p in paths.values())  # never inside another tree
    # At some moment two tasks had a worktree at once (created before the other's was removed).
    live, most = 0, 0
    for e in events(app):
        if e["event"] in ("worktree_created", "worktree_removed"):
            live += 1 if e["event"] == "worktree_created" else -1
            most = max(most, live)
    assert most >= 2
    # Merged: every task worktree is gone; only the main one and the merge queue's remain.
    assert sorted(p.name for p in root.iterdir()) == ["merge-queue"]
    assert git(ws, "worktree", "list", "--porcelain").count("worktree ") == 2
    assert len(merge_commits_green(ws, tmp_path)) == len(ids)


def test_worktree_leftovers_are_swept_at_start_and_an_owned_one_is_kept(fake_llm, write_config, build, tmp_path):
    names = helper_names(1)
    fake_llm.set_script(chaos_script(names))
    app = build(fake_llm, start=False)
    config = write_config(fake_llm)
    owned = submit_code_tasks(config, names)[names[0]]
    ws = app.live.current.file_system.workspace_path
    root = tmp_path / "data" / "worktrees"
    git(ws, "branch", "agents/orphan", "main")
    git(ws, "worktree", "add", str(root / "0123456789ab"), "agents/orphan")  # no task owns it
    (root / "0123456789ab" / "half-written.py").write_text("x = 1\n")
    (root / "junk").mkdir()
    (root / "junk" / "file").write_text("left by a crash")
    git(ws, "branch", f"agents/{owned}", "main")
    git(ws, "worktree", "add", str(root / owned), f"agents/{owned}")  # a queued task owns it

    again = build(fake_llm, start=False)
    assert sorted(p.name for p in root.iterdir()) == [owned]
    listed = git(ws, "worktree", "list", "--porcelain")
    assert "0123456789ab" not in listed and owned in listed
    swept = [e for e in events(again) if e["event"] == "worktrees_swept"]
    assert sorted(swept[-1]["removed"]) == ["0123456789ab", "junk"]


def test_attempts_run_the_affected_tests_and_the_queue_the_full_suite(fake_llm, build):
    names = helper_names(3)
    fake_llm.set_script(chaos_script(names))
    app = build(fake_llm)
    ids = []
    for name in names:  # one after the other: each later task's repository holds the earlier ones' tests
        ids.append(app.orchestrator.submit_task("code", task_title(name), f"{name} brief").id)
        wait_for(lambda t=ids[-1]: app.tasks.get(t).status in FINAL, timeout=90, message="task final")
    assert {app.tasks.get(t).status for t in ids} == {TaskStatus.COMPLETED}
    tested = [a["details"]["passed"] for t in ids for a in app.memory.activities(t) if a["activity"] == "code_tested"]
    assert tested and set(tested) == {2}  # each attempt: only its own two tests (nothing else imports it)
    queue = [e["passed"] for e in events(app) if e["event"] == "merge_queue_tested"]
    assert queue == [2, 4, 6]  # the queue: the whole suite, growing with every merge


def test_a_worktree_left_detached_by_a_killed_worktree_add_is_made_again_on_its_branch(
        fake_llm, write_config, build, tmp_path):
    """kill -9 inside `git worktree add` leaves the worktree detached and locked: reused as it was, every
    commit of the task went to the detached HEAD, never to the branch, and the task went round forever."""
    names = helper_names(1)
    fake_llm.set_script(chaos_script(names))
    app = build(fake_llm, start=False)
    owned = submit_code_tasks(write_config(fake_llm), names)[names[0]]
    ws = app.live.current.file_system.workspace_path
    root = tmp_path / "data" / "worktrees"
    git(ws, "branch", f"agents/{owned}", "main")
    git(ws, "worktree", "add", "--detach", "--lock", str(root / owned), "main")  # what the kill leaves

    again = build(fake_llm)
    done = wait_for(lambda: (t := again.tasks.get(owned)) and t.status in FINAL and t, timeout=90,
                    message="the task settled")
    assert done.status == TaskStatus.COMPLETED, done.error
    assert any(e["event"] == "worktree_replaced" and e["task_id"] == owned for e in events(again))
    merges = git(ws, "log", "--first-parent", "--merges", "--format=%(trailers:key=Task-Id,valueonly,separator=)",
                 "main").split()
    assert merges == [owned]


def test_a_worktree_still_registered_whose_directory_is_gone_is_made_again(fake_llm, build, tmp_path):
    """A crash after its directory was removed but before git forgot it: `git worktree add` refuses the path
    until git's records are pruned (done only then: a new worktree needs no prune)."""
    app = build(fake_llm, start=False)
    worktrees = app.orchestrator.flows[TaskType.CODE].worktrees
    first = worktrees.acquire("t1", "agents/t1-gone")
    path = first.path
    shutil.rmtree(path)  # the directory gone, git's record of it kept
    worktrees._open.clear()  # as after a restart
    again = worktrees.acquire("t1", "agents/t1-gone")
    assert again.path == path and (path / ".git").is_file()
    assert git(path, "symbolic-ref", "--short", "HEAD").strip() == "agents/t1-gone"
