"""``doctor`` checks for git: the repository, the agents' identity, the remote."""

from __future__ import annotations

from ai_agents.domain import CheckResult, Role
from ai_agents.errors import AgentsError
from ai_agents.git.identity import identity_for
from ai_agents.git.manager import GitManager


def check_git(gm: GitManager, remote_timeout: float = 10.0, repository_url: str | None = None) -> list[CheckResult]:
    """Repository usable, per-agent identity, and (when a remote exists) ``git ls-remote`` answers.

    A fresh install has no repository yet: that is fine (ok) when the daemon's start
    can make one, i.e. the same cases ``GitManager.ensure_repository`` handles.
    """
    results: list[CheckResult] = []
    if not gm.is_repository():
        return [_not_yet_a_repository(gm, repository_url)]
    try:
        branch = gm.current_branch()
        head = gm.head_sha()
        clean = gm.is_clean()
        results.append(CheckResult("git", True, f"{gm.repo_path} on {branch or 'detached HEAD'} at {head[:10]}"
                                   + ("" if clean else " (uncommitted changes)"),
                                   {"branch": branch, "head": head, "clean": clean}))
    except AgentsError as e:
        results.append(CheckResult("git", False, f"{gm.repo_path}: {e}"))
        return results
    dev = identity_for(Role.DEVELOPER, gm.identity_domain)
    results.append(CheckResult("git-ident", True, f"commits are authored per agent, e.g. {dev.name} <{dev.email}>",
                               {"example": f"{dev.name} <{dev.email}>"}))
    if not gm.has_remote():
        results.append(CheckResult("git-remote", True, f"no remote {gm.remote_name!r}: local repository only"))
        return results
    try:
        gm.remote_reachable(remote_timeout)
        results.append(CheckResult("git-remote", True, f"remote {gm.remote_name!r} is reachable"))
    except AgentsError as e:
        results.append(CheckResult("git-remote", False, str(e)))
    return results


def _not_yet_a_repository(gm: GitManager, repository_url: str | None) -> CheckResult:
    path = gm.repo_path
    exists = path.exists()
    empty = not exists or (path.is_dir() and not any(path.iterdir()))
    what = "does not exist yet" if not exists else ("is empty" if empty else "is not a git repository")
    data = {"exists": exists, "empty": empty, "repository_url": bool(repository_url)}
    if exists and not path.is_dir():
        return CheckResult("git", False, f"{path} is a file, not a directory: fix file_system.workspace_path", data)
    if repository_url:
        if not empty:
            return CheckResult("git", False, f"{path} {what} and not empty: the daemon cannot clone "
                               "git.repository_url into it; empty it or point file_system.workspace_path elsewhere",
                               data)
        return CheckResult("git", True, f"{path} {what}: the daemon clones git.repository_url there at start", data)
    return CheckResult("git", True, f"{path} {what}: the daemon creates it at start "
                       f"(git init on branch {gm.branch!r} and a first commit)", data)
