"""Merged branches are deleted (``git.delete_merged_branches``): a completed task's branch goes, here and
on the shared remote; a branch not on main, or whose remote tip moved since it was seen, is kept.
Real git: a bare remote, the node's clone, a second clone playing another machine."""

from __future__ import annotations

from pathlib import Path

from ai_agents.domain import TaskStatus, TaskType
from tests.chaos.scenario import chaos_script, helper_names
from tests.mainline import git
from tests.merge_queue_remote.nodes import bare_remote, build_node, code_flow, events, run_helper_task, task_merges


def heads(repo: Path) -> list[str]:
    return git(repo, "for-each-ref", "--format=%(refname)", "refs/heads").split()


def test_a_completed_tasks_branch_is_deleted_here_and_on_the_remote(fake_llm, write_config, tmp_path):
    remote = bare_remote(tmp_path)
    names = helper_names(1)
    fake_llm.set_script(chaos_script(names))
    node = build_node(write_config, fake_llm, tmp_path, "a", remote)
    done, rows = run_helper_task(node, names[0])
    activities = {a["activity"]: a["details"] for a in rows}
    assert done.status == TaskStatus.COMPLETED, done.error
    branch = done.payload["branch"]
    pushed = [e for e in events(tmp_path) if e["event"] == "git_push_lease" and e["branch"] == branch and e["pushed"]]
    assert pushed  # it was on the remote while the task ran
    assert task_merges(remote) == [done.id]
    assert heads(remote) == ["refs/heads/main"]
    assert heads(tmp_path / "a" / "workspace") == ["refs/heads/main"]
    assert sorted(activities["branch_deleted"]["branches"]) == sorted([branch, f"origin/{branch}"])


def _merged_branch(ws: Path, branch: str, name: str) -> str:
    """``branch`` with one commit, merged --no-ff into main; both pushed. Its tip."""
    git(ws, "switch", "-q", "-c", branch, "main")
    (ws / name).write_text("x = 1\n")
    git(ws, "add", name)
    git(ws, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", f"add {name}")
    git(ws, "switch", "-q", "main")
    git(ws, "-c", "user.name=t", "-c", "user.email=t@t", "merge", "-q", "--no-ff", "-m", f"Merge {branch}", branch)
    git(ws, "push", "-q", "origin", "main", branch)
    return git(ws, "rev-parse", branch).strip()


def _move_on_remote(tmp: Path, remote: Path, branch: str) -> str:
    """Another machine pushes one more commit onto the remote's ``branch``; the new tip."""
    other = tmp / "other"
    if not other.exists():
        git(tmp, "clone", "-q", str(remote), str(other))
    git(other, "fetch", "-q", "origin")
    git(other, "switch", "-q", "-C", branch, f"origin/{branch}")
    git(other, "-c", "user.name=o", "-c", "user.email=o@o", "commit", "-q", "--allow-empty", "-m", "more work")
    git(other, "push", "-q", "origin", branch)
    return git(other, "rev-parse", branch).strip()


def test_a_branch_whose_remote_tip_moved_is_kept(fake_llm, write_config, tmp_path):
    remote = bare_remote(tmp_path)
    node = build_node(write_config, fake_llm, tmp_path, "a", remote)
    ws = tmp_path / "a" / "workspace"
    ids = [node.tasks.create(TaskType.CODE, f"task {i}", "brief").id for i in range(3)]
    for task_id in ids:
        node.db.execute("UPDATE tasks SET status = ? WHERE id = ?", (TaskStatus.COMPLETED.value, task_id))
    seen, moved, unmerged = (f"agents/{i}-x" for i in ids)
    _merged_branch(ws, seen, "seen.py")
    _merged_branch(ws, moved, "moved.py")
    git(ws, "switch", "-q", "-c", unmerged, "main")
    git(ws, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "not merged")
    git(ws, "switch", "-q", "main")
    branches = code_flow(node).branches
    try:
        # Moved after this node last fetched: the sweep's lease (on the tip it saw, merged) is refused.
        seen_now = _move_on_remote(tmp_path, remote, seen)
        # Moved before the fetch that retire makes: its tip is not on main, nothing is tried.
        moved_now = _move_on_remote(tmp_path, remote, moved)
        assert branches.retire(ids[1], moved) == [moved]  # the local copy is merged; the remote's is not
        assert sorted(branches.sweep()) == [seen]
    finally:
        node.stop()
    assert git(remote, "rev-parse", seen).strip() == seen_now
    assert git(remote, "rev-parse", moved).strip() == moved_now
    assert sorted(heads(ws)) == sorted(["refs/heads/main", f"refs/heads/{unmerged}"])
    assert not [e for e in events(tmp_path) if e["event"] == "branch_not_deleted"]
