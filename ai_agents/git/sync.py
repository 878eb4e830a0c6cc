"""Keeping the branch in sync with the remote: push with retries, pull by fast-forward or rebase."""

from __future__ import annotations

import git
import structlog

from ai_agents.errors import GitOperationError, MergeConflictError
from ai_agents.git.identity import SYSTEM_AGENT, actor_env, identity_for
from ai_agents.git.remote import RemoteOps
from ai_agents.git.repo_state import RepoStateMixin

log = structlog.get_logger("ai_agents.git")


class SyncMixin(RepoStateMixin):
    """Remote operations of GitManager; expects the attributes GitManager sets."""

    _remote: RemoteOps
    remote_name: str
    pull_strategy: str
    identity_domain: str

    def push(self, branch: str | None = None) -> None:
        """Push ``branch`` (default: current) to the remote, with retries; GitRemoteError if unreachable."""
        with self._lock:
            name = branch or self.current_branch()
            if not name:
                raise GitOperationError("cannot push: HEAD is detached and no branch was given")
            self._require_remote()
            with git.Repo(self.repo_path) as repo:
                self._remote.push(repo, self.remote_name, name)
            log.info("git_push", branch=name, remote=self.remote_name, sha=self._cmd.run(
                "rev-parse", f"refs/heads/{name}").stdout.strip())

    def pull(self) -> str:
        """Fetch and bring the current branch up to date (fast-forward or rebase); return HEAD's sha."""
        with self._lock:
            self._require_remote()
            name = self.current_branch()
            if not name:
                raise GitOperationError("cannot pull: HEAD is detached")
            self._require_no_operation_in_progress()
            self._remote.fetch(self.remote_name)
            upstream = f"refs/remotes/{self.remote_name}/{name}"
            if not self._cmd.run("rev-parse", "--verify", "-q", upstream, check=False).ok:
                log.info("git_pull_nothing", branch=name, reason="branch not on the remote")
                return self.head_sha()
            if self.pull_strategy == "ff":
                result = self._cmd.run("merge", "--ff-only", upstream, check=False)
                if not result.ok:
                    raise GitOperationError(f"cannot fast-forward {name} to {self.remote_name}/{name} "
                                            f"(diverged or local changes): {self._cmd.explain(result)}")
            else:
                self._rebase_onto(upstream)
            sha = self.head_sha()
            log.info("git_pull", branch=name, strategy=self.pull_strategy, sha=sha)
            return sha

    def _rebase_onto(self, upstream: str) -> None:
        before = self.head_sha()
        committer = identity_for(SYSTEM_AGENT, self.identity_domain)
        result = self._cmd.run("rebase", upstream, env=actor_env(committer, committer), check=False)
        if result.ok:
            return
        conflicts = [p for p in self._cmd.run("diff", "--name-only", "-z", "--diff-filter=U",
                                              check=False).stdout.split("\0") if p]
        if self._in_rebase():
            self._cmd.run("rebase", "--abort")
        if self.head_sha() != before:  # pragma: no cover - --abort restores HEAD
            self._cmd.run("reset", "-q", "--hard", before)
        if conflicts:
            raise MergeConflictError(f"rebase onto {upstream} conflicts in {', '.join(conflicts)}; aborted",
                                     conflicts)
        raise GitOperationError(f"rebase onto {upstream} failed: {self._cmd.explain(result)}")

    def remote_reachable(self, timeout: float = 10.0) -> bool:
        """True when ``git ls-remote`` answers within ``timeout``; GitRemoteError otherwise."""
        self._require_remote()
        self._remote.ls_remote(self.remote_name, timeout)
        return True

    def _require_remote(self) -> None:
        if not self.has_remote():
            raise GitOperationError(f"no remote named {self.remote_name} is configured")

    def has_remote(self) -> bool:
        return self._cmd.run("remote", "get-url", self.remote_name, check=False).ok
