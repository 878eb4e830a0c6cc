"""Branches and merges: create, switch, and merge with --no-ff, aborting cleanly on conflict."""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from ai_agents.domain import Role
from ai_agents.errors import GitOperationError, MergeConflictError, SecretDetectedError
from ai_agents.git.identity import actor_env, identity_for
from ai_agents.git.message import compose
from ai_agents.git.repo_state import RepoStateMixin
from ai_agents.git.secrets_scan import scan_message

log = structlog.get_logger("ai_agents.git")


class BranchMixin(RepoStateMixin):
    """Branch operations of GitManager; expects the attributes GitManager sets."""

    identity_domain: str
    secret_values: tuple[str, ...]

    def create_branch(self, name: str, from_ref: str | None = None) -> None:
        with self._lock:
            self._check_branch_name(name)
            if self.branch_exists(name):
                raise GitOperationError(f"branch {name} already exists")
            self._cmd.run("branch", "--no-track", name, from_ref or "HEAD")
            log.info("git_branch_created", branch=name, from_ref=from_ref or "HEAD")

    def branch_tips(self, prefix: str) -> dict[str, str]:
        """Local branches whose name starts with ``prefix`` (a directory such as ``agents/``) -> their tips."""
        return self.ref_tips("refs/heads", prefix)

    def delete_branch(self, name: str, expect: str) -> bool:
        """Delete branch ``name`` only while it points at ``expect`` (a compare-and-swap) and no working
        tree has it checked out; False when it was left as it is."""
        with self._lock:
            self._check_branch_name(name)
            checked_out = self._cmd.run("worktree", "list", "--porcelain").stdout.splitlines()
            if f"branch refs/heads/{name}" in checked_out:
                return False
            deleted = self._cmd.run("update-ref", "-d", f"refs/heads/{name}", expect, check=False).ok
        if deleted:
            log.info("git_branch_deleted", branch=name, sha=expect)
        return deleted

    def checkout(self, name: str) -> None:
        with self._lock:
            if self.current_branch() == name:
                return
            self._cmd.run("switch", "-q", name)
            log.info("git_checkout", branch=name)

    def merge_branch(self, branch: str, into: str | None = None, message: str | None = None,
                     agent: Role | str = Role.TECH_LEAD, trailers: Mapping[str, str] | None = None) -> str:
        """Merge ``branch`` into ``into`` (checked out first, and left checked out) with --no-ff.

        On a conflict the merge is aborted, the original branch checked out again, and
        MergeConflictError lists the conflicting files: the repository is as before.
        """
        actor = identity_for(agent, self.identity_domain)
        with self._lock:
            if not self.branch_exists(branch):
                raise GitOperationError(f"cannot merge {branch}: no such branch")
            self._require_no_operation_in_progress()
            if self._cmd.run("status", "--porcelain", "--untracked-files=no").stdout.strip():
                raise GitOperationError("cannot merge with uncommitted changes; commit or discard them first")
            original = self.current_branch()
            target = into or original
            if target is None:
                raise GitOperationError("cannot merge: HEAD is detached and no target branch was given")
            try:
                # Free text made inert, the daemon's trailers last (see ai_agents.git.message).
                message = compose(message or f"Merge branch '{branch}' into {target}", trailers)[0]
            except ValueError as e:
                raise GitOperationError(f"merge trailers refused: {e}") from e
            if found := scan_message(message, self.secret_values):
                raise SecretDetectedError(f"merge refused, possible secret in {found[0].describe()}")
            self.checkout(target)
            before = self.head_sha()
            result = self._cmd.run("merge", "--no-ff", "--no-edit", "-m", message, branch, env=actor_env(actor),
                                   check=False)
            if result.ok:
                sha = self.head_sha()
                log.info("git_merge", branch=branch, into=target, sha=sha, agent=actor.name)
                return sha
            conflicts = [p for p in self._cmd.run("diff", "--name-only", "-z", "--diff-filter=U",
                                                  check=False).stdout.split("\0") if p]
            self._abort_merge(before)
            if original and original != target:
                self.checkout(original)
            if conflicts:
                log.warning("git_merge_conflict", branch=branch, into=target, conflicts=conflicts)
                raise MergeConflictError(f"merging {branch} into {target} conflicts in {', '.join(conflicts)}; "
                                         "the merge was aborted", conflicts)
            raise GitOperationError(f"merging {branch} into {target} failed: {self._cmd.explain(result)}")

    def _abort_merge(self, before: str) -> None:
        if self._git_path_exists("MERGE_HEAD"):
            self._cmd.run("merge", "--abort")
        if self.head_sha() != before:  # pragma: no cover - git merge never moves HEAD on failure
            self._cmd.run("reset", "-q", "--hard", before)
