"""SharedRemoteMixin: the git steps of several daemons sharing one remote (``git.shared_remote``).

Task branches are published to the remote as they are committed (a compare-and-swap push on the
remote-tracking value), so another node resumes a task from its branch; the main branch moves on
the remote only by :meth:`push_lease` (``--force-with-lease=main:<the sha it was built on>``), and
the local main only follows it. Documents are committed onto a given base without any working
tree (:meth:`commit_onto`), for the merge queue to publish.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from ai_agents.domain import Role
from ai_agents.errors import GitOperationError
from ai_agents.git.identity import actor_env, identity_for
from ai_agents.git.remote import RemoteOps
from ai_agents.git.repo_state import RepoStateMixin

log = structlog.get_logger("ai_agents.git")

MAX_MERGES_SCANNED = 5000  # first-parent merges of main searched for a task's trailer


class SharedRemoteMixin(RepoStateMixin):
    """Remote-shared branches of GitManager; expects the attributes and methods GitManager has
    (``rev``, ``is_ancestor``, ``branch_exists``, ``move_branch``, ``_message``, ``_scan_for_secrets``)."""

    _remote: RemoteOps
    remote_name: str
    identity_domain: str

    if TYPE_CHECKING:  # provided by IntegrationMixin and GitManager (see the class docstring)
        def rev(self, ref: str) -> str | None: ...
        def is_ancestor(self, older: str, newer: str) -> bool: ...
        def move_branch(self, branch: str, new: str, old: str) -> None: ...
        def _message(self, text: str, trailers: Mapping[str, str] | None) -> str: ...
        def _scan_for_secrets(self, message: str, index_env: dict[str, str], base: str | None) -> None: ...

    def fetch(self) -> None:
        """Fetch every branch of the remote (pruned); GitRemoteError when it cannot be reached."""
        self._remote.fetch(self.remote_name)

    def remote_rev(self, branch: str) -> str | None:
        """The remote's ``branch`` as last fetched or pushed (None: not there)."""
        return self.rev(f"refs/remotes/{self.remote_name}/{branch}")

    def push_lease(self, sha: str, branch: str, expect: str | None) -> bool:
        """Compare-and-swap the remote's ``branch`` from ``expect`` (None: absent) to ``sha``.

        False when the remote's branch was something else (nothing changed); on success the
        remote-tracking ref is set to ``sha`` too.
        """
        self._check_branch_name(branch)
        pushed = self._remote.push_lease(self.remote_name, sha, branch, expect)
        if pushed:
            self._cmd.run("update-ref", f"refs/remotes/{self.remote_name}/{branch}", sha)
        log.info("git_push_lease", branch=branch, sha=sha, expected=expect, pushed=pushed)
        return pushed

    def publish_branch(self, branch: str) -> str | None:
        """Push the local ``branch`` to the remote (its tip; None when there is no such branch).

        The push replaces what the remote held when last seen (a rework rebuilds a branch); if
        the remote moved meanwhile it is fetched and the push made once more: the caller holds
        the task's lease, so its branch is the task's truth.
        """
        tip = self.rev(f"refs/heads/{branch}") if self.branch_exists(branch) else None
        if tip is None:
            return None
        for _ in range(2):
            seen = self.remote_rev(branch)
            if seen == tip or self.push_lease(tip, branch, seen):
                return tip
            self.fetch()
        raise GitOperationError(f"the remote's {branch} kept moving; it was not published")

    def remote_branch_tips(self, prefix: str) -> dict[str, str]:
        """The remote's branches starting with ``prefix``, as last fetched or pushed -> their tips."""
        return self.ref_tips(f"refs/remotes/{self.remote_name}", prefix)

    def delete_remote_branches(self, leases: Mapping[str, str], batch: int = 200) -> list[str]:
        """Delete the remote's branches (name -> the sha each must still point at; one that moved is
        kept), their remote-tracking refs too. The deleted ones; unreachable: GitRemoteError."""
        deleted: list[str] = []
        items = list(leases.items())
        for i in range(0, len(items), batch):
            part = dict(items[i:i + batch])
            for branch in part:
                self._check_branch_name(branch)
            done = self._remote.delete_leased(self.remote_name, part)
            for branch in done:
                self._cmd.run("update-ref", "-d", f"refs/remotes/{self.remote_name}/{branch}", part[branch],
                              check=False)
            deleted += done
        if leases:
            log.info("git_remote_branches_deleted", deleted=deleted, kept=sorted(set(leases) - set(deleted)))
        return deleted

    def take_remote_branch(self, branch: str) -> str | None:
        """Make the local ``branch`` at least the remote's (fetched before): created from it when
        missing, fast-forwarded when behind, replaced when the two diverged (the remote holds what
        the last holder of the task's lease published). What was done, or None."""
        remote = self.remote_rev(branch)
        if remote is None:
            return None
        if not self.branch_exists(branch):
            self._check_branch_name(branch)
            self._cmd.run("branch", "--no-track", branch, remote)
            log.info("git_branch_from_remote", branch=branch, sha=remote)
            return "created"
        local = self.rev(f"refs/heads/{branch}")
        if local is None or local == remote or self.is_ancestor(remote, local):
            return None  # the same, or local commits not yet published (pushed next)
        self.move_branch(branch, remote, local)
        diverged = not self.is_ancestor(local, remote)
        (log.warning if diverged else log.info)("git_branch_took_remote", branch=branch, old=local, new=remote,
                                                diverged=diverged)
        return "replaced" if diverged else "fast-forwarded"

    def merged_task(self, ref: str, task_id: str) -> str | None:
        """The merge commit on ``ref``'s first-parent line whose trailer names ``task_id`` (None: none)."""
        out = self._cmd.run("log", "--first-parent", "--merges", f"-n{MAX_MERGES_SCANNED}",
                            "--format=%H %(trailers:key=Task-Id,valueonly,separator=%x2C)", ref, "--",
                            check=False).stdout
        for line in out.splitlines():
            sha, _, ids = line.partition(" ")
            if task_id in ids.split(","):
                return sha
        return None

    def merge_base(self, a: str, b: str) -> str | None:
        result = self._cmd.run("merge-base", a, b, check=False)
        return result.stdout.strip() or None if result.ok else None

    def changed_files(self, old: str, new: str) -> set[str]:
        """Paths that differ between the commits ``old`` and ``new`` (renames as delete + add)."""
        out = self._cmd.run("diff", "--name-only", "-z", "--no-renames", old, new).stdout
        return {p for p in out.split("\0") if p}

    def merge_texts(self, base: str, ours: str, theirs: str, *, labels: tuple[str, str, str]) -> tuple[str, bool]:
        """Three-way merge of texts (``git merge-file``): (the result, clean?). Conflicts are left
        in the result as marked hunks labelled ``labels`` (ours, base, theirs)."""
        with tempfile.TemporaryDirectory(prefix="ai-agents-merge-file-") as tmp:
            paths = []
            for name, text in (("ours", ours), ("base", base), ("theirs", theirs)):
                (Path(tmp) / name).write_text(text, encoding="utf-8")
                paths.append(str(Path(tmp) / name))
            result = self._cmd.run("merge-file", "-p", "-L", labels[0], "-L", labels[1], "-L", labels[2], *paths,
                                   check=False, cwd=Path(tmp))
        if result.status < 0 or result.status > 127:
            raise GitOperationError(f"git merge-file failed: {self._cmd.explain(result)}")
        return result.stdout, result.status == 0

    def commit_onto(self, base: str, files: Mapping[str, str], message: str, *, agent: Role | str,
                    trailers: Mapping[str, str] | None = None) -> str:
        """A commit of ``files`` (path -> text) on top of ``base``, built without any working tree.

        Scanned for secrets like every commit; no ref moves (the caller publishes the sha).
        """
        text = self._message(message, trailers)
        actor = identity_for(agent, self.identity_domain)
        with tempfile.TemporaryDirectory(prefix="ai-agents-onto-") as tmp:
            env: dict[str, Any] = {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
            self._cmd.run("read-tree", base, env=env)
            for i, (path, content) in enumerate(files.items()):
                blob_file = Path(tmp) / f"blob-{i}"
                blob_file.write_text(content, encoding="utf-8")
                blob = self._cmd.run("hash-object", "-w", "--no-filters", str(blob_file)).stdout.strip()
                self._cmd.run("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
            tree = self._cmd.run("write-tree", env=env).stdout.strip()
            self._scan_for_secrets(text, env, base)
            msg_file = Path(tmp) / "message"
            msg_file.write_text(text, encoding="utf-8")
            sha = self._cmd.run("commit-tree", tree, "-p", base, "-F", str(msg_file), env=actor_env(actor)).stdout
        log.info("git_commit_onto", base=base, sha=sha.strip(), agent=actor.name, files=len(files))
        return sha.strip()
