"""IntegrationMixin: the merge queue's git steps, done in a detached worktree beside the main one.

The queue never checks out the main branch anywhere but the main working tree: it builds each
candidate (the main branch plus one task branch) detached in its own worktree, so the tree the
suite runs on is exactly the commit the main branch is then fast-forwarded to. A conflict is
aborted and reported with its hunks; every ref update is a compare-and-swap; no ``git stash``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import structlog

from ai_agents.domain import Role
from ai_agents.errors import GitOperationError, MergeConflictError, SecretDetectedError
from ai_agents.git.cmd import GitCmd, GitResult
from ai_agents.git.identity import actor_env, identity_for
from ai_agents.git.message import compose
from ai_agents.git.repo_state import RepoStateMixin, git_paths, remove_stale_locks
from ai_agents.git.secrets_scan import scan_message

log = structlog.get_logger("ai_agents.git")

MAX_HUNK_CHARS = 6000


class MergeObjects(NamedTuple):
    """A merge made as objects only (:meth:`IntegrationMixin.merge_commit`)."""

    commit: str
    tree: str


class IntegrationMixin(RepoStateMixin):
    """Worktrees, detached merges and compare-and-swap ref moves; expects GitManager's attributes."""

    identity_domain: str
    secret_values: tuple[str, ...]
    branch: str

    # --- worktrees ----------------------------------------------------------------------
    def worktree_paths(self) -> dict[Path, str | None]:
        """Every linked worktree of the repository (not the main one) -> its branch (None: detached)."""
        out = self._cmd.run("worktree", "list", "--porcelain").stdout
        found: dict[Path, str | None] = {}
        current: Path | None = None
        for line in out.splitlines():
            if line.startswith("worktree "):
                current = Path(line[len("worktree "):])
                found[current] = None
            elif line.startswith("branch refs/heads/") and current is not None:
                found[current] = line[len("branch refs/heads/"):]
        found.pop(Path(self._cmd.run("rev-parse", "--show-toplevel").stdout.strip()), None)
        return found

    def ensure_worktree(self, path: Path, ref: str) -> GitCmd:
        """A clean worktree at ``path`` with ``ref`` checked out detached (created or reused)."""
        with self._lock:
            path = Path(path)
            cmd = GitCmd(path)
            if not (path / ".git").is_file():
                if path.exists():
                    shutil.rmtree(path)
                self._cmd.run("worktree", "prune")
                path.parent.mkdir(parents=True, exist_ok=True)
                self._cmd.run("worktree", "add", "--detach", "-f", str(path), ref)
                log.info("git_worktree_added", path=str(path), ref=ref)
                return cmd  # just checked out: exactly ``ref``, nothing half-way, nothing untracked
            # Reused: a daemon killed mid-merge/rebase leaves the worktree's own index.lock behind.
            git_dir = Path(cmd.run("rev-parse", "--absolute-git-dir").stdout.strip())
            if done := remove_stale_locks(git_dir):
                log.warning("git_worktree_recovered", path=str(path), actions=done)
            self.reset_worktree(cmd, ref)
            return cmd

    @staticmethod
    def reset_worktree(cmd: GitCmd, ref: str) -> None:
        """Abort whatever a crash left half-way in the worktree and make it exactly ``ref``, detached."""
        markers = {"merge": ("MERGE_HEAD",), "rebase": ("rebase-merge", "rebase-apply"),
                   "cherry-pick": ("CHERRY_PICK_HEAD",)}
        names = [name for group in markers.values() for name in group]
        try:
            present: set[str] | None = {n for n, p in zip(names, git_paths(cmd, *names), strict=True) if p.exists()}
        except GitOperationError:
            present = None  # unreadable: abort everything, as a crash may need
        for what, group in markers.items():
            if present is None or present.intersection(group):
                cmd.run(what, "--abort", check=False)
        cmd.run("checkout", "-q", "--detach", "-f", ref)
        cmd.run("reset", "-q", "--hard", ref)
        cmd.run("clean", "-q", "-ffdx")

    def add_worktree(self, path: Path, branch: str, *, from_ref: str | None = None) -> None:
        """A worktree at ``path`` with ``branch`` checked out. The branch must exist, unless ``from_ref`` is
        given: then a missing branch is made there first (one ``git worktree add -b``)."""
        with self._lock:
            self._check_branch_name(branch)
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            if from_ref is not None and not self.branch_exists(branch):
                self._cmd.run("worktree", "add", "-q", "--no-track", "-b", branch, str(path), from_ref)
                log.info("git_branch_created", branch=branch, from_ref=from_ref)
            else:
                self._cmd.run("worktree", "add", "-q", str(path), branch)

    @staticmethod
    def worktree_branch(path: Path) -> str | None:
        """The branch checked out in the worktree at ``path``; None when its HEAD is detached or unreadable."""
        result = GitCmd(Path(path)).run("symbolic-ref", "--short", "-q", "HEAD", check=False)
        return result.stdout.strip() if result.ok else None

    def prune_worktrees(self) -> None:
        self._cmd.run("worktree", "prune")

    def sync_to_head(self) -> None:
        """Make this (worktree's) tree exactly its HEAD again, after its branch was moved from outside."""
        with self._lock:
            self._cmd.run("reset", "-q", "--hard", "HEAD")

    def remove_worktree(self, path: Path) -> None:
        with self._lock:
            # A `worktree add` killed midway leaves its worktree locked ("initializing"): unlocked first, or
            # neither remove nor prune would take it.
            self._cmd.run("worktree", "unlock", str(path), check=False)
            self._cmd.run("worktree", "remove", "--force", str(path), check=False)
            if Path(path).exists():
                shutil.rmtree(path, ignore_errors=True)
            self._cmd.run("worktree", "prune")

    # --- refs -------------------------------------------------------------------------
    def rev(self, ref: str) -> str | None:
        result = self._cmd.run("rev-parse", "--verify", "-q", f"{ref}^{{commit}}", check=False)
        return result.stdout.strip() if result.ok else None

    def revs(self, *refs: str) -> list[str | None]:
        """The commit of each of ``refs`` (None for one that is not there): one git call when all are there."""
        result = self._cmd.run("rev-parse", *(f"{ref}^{{commit}}" for ref in refs), "--", check=False)
        lines = result.stdout.split()
        if result.ok and len(lines) == len(refs):
            return list(lines)
        return [self.rev(ref) for ref in refs]

    def commit_and_tree(self, ref: str) -> tuple[str | None, str | None]:
        """(``ref``'s commit, its tree) in one git call; (None, None) when it is not there (a branch with no
        commit yet)."""
        result = self._cmd.run("rev-parse", f"{ref}^{{commit}}", f"{ref}^{{tree}}", "--", check=False)
        lines = result.stdout.split()
        if not result.ok or len(lines) < 2:
            return None, None
        return lines[0], lines[1]

    def file_at(self, ref: str, path: str) -> str | None:
        """The text of ``path`` at ``ref`` (None when it is not there); reads objects only, no lock needed."""
        result = self._cmd.run("show", f"{ref}:{path}", check=False)
        return result.stdout if result.ok else None

    def is_ancestor(self, older: str, newer: str) -> bool:
        return self._cmd.run("merge-base", "--is-ancestor", older, newer, check=False).ok

    def move_branch(self, branch: str, new: str, old: str) -> None:
        """Compare-and-swap ``refs/heads/branch`` from ``old`` to ``new``; refuses if it moved meanwhile."""
        self._check_branch_name(branch)
        self._cmd.run("update-ref", "-m", f"ai-agents: move {branch}", f"refs/heads/{branch}", new, old)

    def fast_forward(self, sha: str, *, branch: str | None = None, expect: str | None = None) -> bool:
        """Fast-forward the branch checked out in the main working tree (clean) to ``sha``; never a merge.

        ``branch``: check it out first (if it is not); ``expect``: only if that branch is at ``expect`` (a
        compare-and-swap; False when it moved). Both read with one git call; already at ``sha``: no merge."""
        with self._lock:
            self._require_no_operation_in_progress()
            head = self._cmd.run("rev-parse", "HEAD", "--symbolic-full-name", "HEAD", check=False).stdout.split()
            current = head[1].removeprefix("refs/heads/") if len(head) == 2 and head[1] != "HEAD" else None
            at = head[0] if len(head) == 2 else None
            if branch is not None and current != branch:
                self._cmd.run("switch", "-q", branch)
                log.info("git_checkout", branch=branch)
                current, at = branch, self.rev(branch)
            if at == sha:
                return True
            if expect is not None and at != expect:
                return False
            self._cmd.run("merge", "--ff-only", "-q", sha)
            log.info("git_fast_forward", branch=current, sha=sha)
            return True

    # --- building a candidate ------------------------------------------------------------
    def _merge_text(self, message: str, trailers: Mapping[str, str]) -> str:
        try:
            text = compose(message, trailers)[0]
        except ValueError as e:
            raise GitOperationError(f"merge trailers refused: {e}") from e
        if found := scan_message(text, self.secret_values):
            raise SecretDetectedError(f"merge refused, possible secret in {found[0].describe()}")
        return text

    def merge_commit(self, base: str, branch_sha: str, *, message: str, trailers: Mapping[str, str],
                     agent: Role | str = Role.TECH_LEAD) -> MergeObjects | None:
        """``base`` merged --no-ff with ``branch_sha`` as a commit object only: no worktree, no ref moved
        (``git merge-tree --write-tree``, the merge ``merge_detached`` makes, then ``commit-tree``): the commit
        and its tree. The caller knows ``branch_sha`` is not in ``base`` already (``git merge`` would make no
        commit then). None when they conflict or when this git cannot (before 2.38): ``merge_detached`` then
        makes it in a worktree, with the conflict hunks."""
        if branch_sha == base:
            return None
        text = self._merge_text(message, trailers)
        merged = self._cmd.run("merge-tree", "--write-tree", "--no-messages", base, branch_sha, check=False)
        tree = merged.stdout.split()[0] if merged.ok and merged.stdout.split() else None
        if tree is None:
            return None
        with tempfile.TemporaryDirectory(prefix="ai-agents-merge-") as tmp:
            msg_file = Path(tmp) / "message"
            msg_file.write_text(text, encoding="utf-8")
            actor = identity_for(agent, self.identity_domain)
            commit = self._cmd.run("commit-tree", tree, "-p", base, "-p", branch_sha, "-F", str(msg_file),
                                   env=actor_env(actor)).stdout.strip()
        return MergeObjects(commit, tree)

    def merge_detached(self, cmd: GitCmd, base: str, branch_sha: str, *, message: str,
                       trailers: Mapping[str, str], agent: Role | str = Role.TECH_LEAD) -> str:
        """In worktree ``cmd``: ``base`` merged --no-ff with ``branch_sha`` (first parent ``base``).

        A conflict is aborted and raised as MergeConflictError carrying the conflict hunks.
        """
        actor = identity_for(agent, self.identity_domain)
        text = self._merge_text(message, trailers)
        self.reset_worktree(cmd, base)
        result = cmd.run("merge", "--no-ff", "--no-edit", "-m", text, branch_sha, env=actor_env(actor), check=False)
        if result.ok:
            return cmd.run("rev-parse", "HEAD").stdout.strip()
        raise self._conflict(cmd, base, f"merging {branch_sha[:12]} onto {base[:12]}", result)

    def rebase_detached(self, cmd: GitCmd, onto: str, branch_sha: str) -> str:
        """In worktree ``cmd``: ``branch_sha``'s commits replayed on ``onto``; the new tip (nothing moved)."""
        self.reset_worktree(cmd, branch_sha)
        result = cmd.run("rebase", "--no-autosquash", onto, check=False)
        if result.ok:
            return cmd.run("rev-parse", "HEAD").stdout.strip()
        raise self._conflict(cmd, branch_sha, f"rebasing {branch_sha[:12]} onto {onto[:12]}", result)

    def cherry_pick_detached(self, cmd: GitCmd, onto: str, commits: list[str]) -> str:
        """In worktree ``cmd``: ``commits`` (authors and messages kept) on top of ``onto``; the new tip."""
        self.reset_worktree(cmd, onto)
        for sha in commits:
            result = cmd.run("cherry-pick", "--allow-empty", "--keep-redundant-commits", sha, check=False)
            if not result.ok:
                raise self._conflict(cmd, onto, f"replaying {sha[:12]} onto {onto[:12]}", result)
        return cmd.run("rev-parse", "HEAD").stdout.strip()

    def _conflict(self, cmd: GitCmd, restore: str, what: str, result: GitResult) -> GitOperationError:
        conflicts = [p for p in cmd.run("diff", "--name-only", "-z", "--diff-filter=U",
                                        check=False).stdout.split("\0") if p]
        hunks = cmd.run("diff", "--no-color", "--no-ext-diff", check=False).stdout[:MAX_HUNK_CHARS]
        self.reset_worktree(cmd, restore)
        if not conflicts:
            return GitOperationError(f"{what} failed: {cmd.explain(result)}")
        log.warning("git_integration_conflict", what=what, conflicts=conflicts)
        return MergeConflictError(f"{what} conflicts in {', '.join(conflicts)}", conflicts, hunks)
