"""``doctor`` checks for git: the repository, the agents' identity, the remote."""

from __future__ import annotations

from ai_agents.domain import CheckResult, Role
from ai_agents.errors import AgentsError
from ai_agents.git.identity import identity_for
from ai_agents.git.manager import GitManager


def check_git(gm: GitManager, remote_timeout: float = 10.0) -> list[CheckResult]:
    """Repository usable, per-agent identity, and (when a remote exists) ``git ls-remote`` answers."""
    results: list[CheckResult] = []
    if not gm.is_repository():
        what = "does not exist" if not gm.repo_path.exists() else "is not a git repository"
        return [CheckResult("git", False, f"{gm.repo_path} {what} (the daemon creates it at start)")]
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
