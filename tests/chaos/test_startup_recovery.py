"""The two repository states the kill -9 runs found a restart could not handle, reproduced exactly.

* ``git merge`` killed while updating HEAD leaves ``.git/HEAD.lock``: ``merge --abort`` and every
  later commit fail on it, so the daemon could not even start (a crash loop under systemd).
* ``git merge`` killed after writing the merged tree but before ``MERGE_HEAD`` leaves the main
  branch with uncommitted files: the resumed task's merge failed with "cannot merge with
  uncommitted changes" and the task was escalated and dropped.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from ai_agents.config import LiveConfig
from ai_agents.config.models import Settings
from ai_agents.domain import Role
from ai_agents.git import GitManager
from ai_agents.orchestrator.workspace import Workspace


def git(ws: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(ws), *args], capture_output=True, text=True, check=True).stdout


def repo_with_task_branch(tmp_path: Path) -> GitManager:
    """main plus a task branch holding one new module, as the Developer leaves it before the merge."""
    repo = GitManager(tmp_path / "ws")
    repo.ensure_repository()
    repo.create_branch("agents/t1", from_ref="main")
    repo.checkout("agents/t1")
    (repo.repo_path / "h01.py").write_text("def h01(value):\n    return value + 1\n")
    repo.commit("feat: h01", agent=Role.DEVELOPER, files=["h01.py"], trailers={"Task-Id": "t1", "Agent": "Developer"})
    repo.checkout("main")
    return repo


def workspace_over(repo: GitManager) -> Workspace:
    return Workspace(live=LiveConfig(Settings()), fs=None, git=repo, runner=None, deployer=None, memory=None)


def test_stale_ref_locks_of_a_killed_merge_are_removed(tmp_path: Path) -> None:
    repo = repo_with_task_branch(tmp_path)
    git_dir = repo.repo_path / ".git"
    (git_dir / "HEAD.lock").write_text(git(repo.repo_path, "rev-parse", "agents/t1"))
    (git_dir / "refs" / "heads" / "main.lock").write_text("")
    # What the daemon's merge does on restart: it fails on the lock, half-way (MERGE_HEAD written).
    assert subprocess.run(["git", "-C", str(repo.repo_path), "merge", "--no-ff", "--no-edit", "agents/t1"],
                          capture_output=True).returncode != 0
    assert (git_dir / "MERGE_HEAD").exists()

    assert repo.recover() == ["removed stale HEAD.lock", "removed stale refs/heads/main.lock", "aborted merge"]
    assert not list(git_dir.glob("*.lock")) and not list((git_dir / "refs").rglob("*.lock"))
    repo.merge_branch("agents/t1", into="main", message="Merge agents/t1", trailers={"Task-Id": "t1"})
    assert (repo.repo_path / "h01.py").exists() and repo.is_clean()


def test_uncommitted_leftovers_of_a_killed_merge_are_discarded_at_start(tmp_path: Path) -> None:
    repo = repo_with_task_branch(tmp_path)
    # The merge had written the branch's file into main's index and tree, then died.
    git(repo.repo_path, "checkout", "agents/t1", "--", "h01.py")
    (repo.repo_path / "stray.txt").write_text("half-written\n")
    assert not repo.is_clean()

    assert workspace_over(repo).recover() == ["discarded uncommitted leftovers"]
    assert repo.is_clean() and repo.current_branch() == "main"
    assert git(repo.repo_path, "ls-files").split() == [".gitignore", "README.md"]
    repo.merge_branch("agents/t1", into="main", message="Merge agents/t1", trailers={"Task-Id": "t1"})
    assert (repo.repo_path / "h01.py").exists()


def test_a_task_branch_left_checked_out_is_left_for_main(tmp_path: Path) -> None:
    repo = repo_with_task_branch(tmp_path)
    repo.checkout("agents/t1")
    (repo.repo_path / "h02.py").write_text("x = 1\n")  # the Developer's next attempt, never committed

    assert workspace_over(repo).recover() == ["discarded uncommitted leftovers", "checked out main"]
    assert repo.current_branch() == "main" and repo.is_clean()
    assert workspace_over(repo).recover() == []  # nothing left to do
