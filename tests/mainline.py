"""Main's first-parent history, checked: the suite passes at every merge commit on it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def git(ws: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(ws), *args], capture_output=True, text=True, check=True).stdout


def merge_commits_green(ws: Path, tmp: Path, branch: str = "main") -> list[str]:
    """Run the suite (pytest, in a throw-away worktree) at each merge commit of ``branch``'s
    first-parent history; assert each is green. Returns the commits checked, newest first."""
    checked = []
    for line in git(ws, "rev-list", "--first-parent", "--parents", branch).splitlines():
        sha, *parents = line.split()
        if len(parents) < 2:
            continue
        where = tmp / f"check-{sha[:10]}"
        git(ws, "worktree", "add", "--detach", str(where), sha)
        try:
            run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
                                 cwd=where, capture_output=True, text=True, timeout=300)
            assert run.returncode == 0, f"{branch}'s merge commit {sha} is red:\n{run.stdout[-2000:]}"
        finally:
            git(ws, "worktree", "remove", "--force", str(where))
        checked.append(sha)
    return checked
