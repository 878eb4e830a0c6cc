"""Read-only queries on the repository, and the start-up recovery of a stuck one."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import structlog

from ai_agents.errors import GitOperationError
from ai_agents.git.cmd import GitCmd

log = structlog.get_logger("ai_agents.git")

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
# Without /proc we cannot see who holds a lock; a lock this old is abandoned.
_STALE_LOCK_SECONDS = 600.0
_LOG_FORMAT = "%H%x00%an%x00%ae%x00%aI%x00%B%x1e"


def lock_holders(lock: Path) -> list[int] | None:
    """Pids that have ``lock`` open or run git in its repository; None if /proc is unavailable."""
    proc = Path("/proc")
    if not (proc / "self" / "fd").is_dir():
        return None
    lock = Path(os.path.realpath(lock))
    # The working tree holding the .git directory the lock is in (refs/heads/x.lock is deep inside it).
    repo = next((p.parent for p in lock.parents if p.name == ".git"), lock.parent)
    holders = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            fds = [os.readlink(fd) for fd in (entry / "fd").iterdir()]
            is_git = (entry / "comm").read_text().strip().startswith("git")
            cwd = os.readlink(entry / "cwd") if is_git else ""
        except OSError:
            continue  # exited meanwhile, or not ours to look at
        if str(lock) in fds or (cwd and Path(os.path.realpath(cwd)).is_relative_to(repo)):
            holders.append(int(entry.name))
    return holders


def remove_stale_locks(git_dir: Path) -> list[str]:
    """Remove the lock files a killed git process left in ``git_dir`` (a repository's or one
    worktree's own git directory); one phrase per lock removed. A git process killed while updating
    a ref leaves HEAD.lock or refs/heads/<b>.lock behind as surely as index.lock, and every later
    merge, checkout or commit fails on it. A lock some process still holds is left alone."""
    done: list[str] = []
    locks = dict.fromkeys([git_dir / "index.lock", *sorted(git_dir.glob("*.lock")),
                           *sorted((git_dir / "refs").rglob("*.lock"))])
    for lock in locks:
        if not lock.exists():
            continue
        holders = lock_holders(lock)
        stale = (not holders) if holders is not None else (
            time.time() - lock.stat().st_mtime > _STALE_LOCK_SECONDS)
        if stale:
            lock.unlink(missing_ok=True)
            done.append(f"removed stale {lock.relative_to(git_dir).as_posix()}")
        else:
            log.warning("git_index_lock_held", lock=lock.name, pids=holders)
    return done


def git_paths(cmd: GitCmd, *names: str) -> list[Path]:
    """Where git keeps ``names`` (MERGE_HEAD, rebase-merge, ...) for the working tree of ``cmd``: one git call."""
    args = [a for name in names for a in ("--git-path", name)]
    rels = cmd.run("rev-parse", *args).stdout.splitlines()
    return [Path(rel) if os.path.isabs(rel) else cmd.path / rel for rel in rels]


class RepoStateMixin:
    """Queries shared by GitManager; expects ``_cmd``, ``_lock`` and ``repo_path``."""

    _cmd: GitCmd
    repo_path: Path
    _lock: Any
    # Untracked paths (relative to the working tree) the clean slate keeps; see discard_changes.
    keep_untracked: tuple[str, ...] = ()

    def _git_paths(self, *names: str) -> list[Path]:
        """Where git keeps ``names`` (MERGE_HEAD, rebase-merge, ...) for this working tree: one git call."""
        return git_paths(self._cmd, *names)

    def _git_path(self, name: str) -> Path:
        return self._git_paths(name)[0]

    def _git_path_exists(self, name: str) -> bool:
        return self._git_path(name).exists()

    def _in_rebase(self) -> bool:
        return any(p.exists() for p in self._git_paths("rebase-merge", "rebase-apply"))

    def _require_no_operation_in_progress(self) -> None:
        markers = {"MERGE_HEAD": "a merge", "CHERRY_PICK_HEAD": "a cherry-pick", "REVERT_HEAD": "a revert",
                   "rebase-merge": "a rebase", "rebase-apply": "a rebase"}
        for path, what in zip(self._git_paths(*markers), markers.values(), strict=True):
            if path.exists():
                raise GitOperationError(f"{what} is in progress; run recover() first")

    def _check_branch_name(self, name: str) -> None:
        if not self._cmd.run("check-ref-format", "--branch", name, check=False).ok or name.startswith("-"):
            raise GitOperationError(f"{name!r} is not a valid branch name")

    def is_repository(self) -> bool:
        """True when ``repo_path`` itself is the top of a git working tree."""
        if not self.repo_path.is_dir():
            return False
        result = self._cmd.run("rev-parse", "--show-toplevel", check=False)
        return result.ok and Path(result.stdout.strip()).resolve() == self.repo_path.resolve()

    def _head_or_none(self) -> str | None:
        result = self._cmd.run("rev-parse", "--verify", "-q", "HEAD^{commit}", check=False)
        return result.stdout.strip() if result.ok else None

    def _has_head(self) -> bool:
        return self._head_or_none() is not None

    def ref_tips(self, namespace: str, prefix: str) -> dict[str, str]:
        """The refs under ``namespace`` (``refs/heads``, ``refs/remotes/origin``) whose name, relative to it,
        starts with ``prefix`` (a directory such as ``agents/``) -> their tips."""
        strip = len(namespace.strip("/").split("/"))
        out = self._cmd.run("for-each-ref", f"--format=%(refname:strip={strip}) %(objectname)",
                            f"{namespace.strip('/')}/{prefix}").stdout
        return dict(line.rsplit(" ", 1) for line in out.splitlines() if " " in line)

    def head_sha(self) -> str:
        sha = self._head_or_none()
        if sha is None:
            raise GitOperationError("the repository has no commits yet")
        return sha

    def current_branch(self) -> str | None:
        """The checked-out branch, or None when HEAD is detached."""
        result = self._cmd.run("symbolic-ref", "--short", "-q", "HEAD", check=False)
        return result.stdout.strip() if result.ok else None

    def branch_exists(self, name: str) -> bool:
        return self._cmd.run("rev-parse", "--verify", "-q", f"refs/heads/{name}", check=False).ok

    def is_merged(self, branch: str, into: str) -> bool:
        """True when every commit of ``branch`` is already in ``into``."""
        return self._cmd.run("merge-base", "--is-ancestor", f"refs/heads/{branch}", f"refs/heads/{into}",
                             check=False).ok

    def is_clean(self) -> bool:
        """No staged, unstaged or untracked (non-ignored) changes."""
        return not self._cmd.run("status", "--porcelain").stdout.strip()

    def ignored(self, paths: list[str]) -> set[str]:
        """Which of ``paths`` (workspace-relative) git ignores: written there, they would never be committed."""
        if not paths:
            return set()
        # One per line (-z needs --stdin, which GitCmd does not feed); paths hold no control character
        # or backslash (normalize refuses them), so with quotePath off only '"' is quoted.
        # check-ignore refuses literal pathspecs; "./" keeps a name like ":(top)x" from being magic.
        result = self._cmd.run("check-ignore", "--", *(f"./{p}" for p in paths), config=[("core.quotePath", "false")],
                               env={"GIT_LITERAL_PATHSPECS": "0"}, check=False)
        if result.status not in (0, 1):  # 1: none is ignored
            raise GitOperationError(f"git check-ignore failed: {self._cmd.explain(result)}")
        lines = [line[1:-1].replace('\\"', '"') if line.startswith('"') else line
                 for line in result.stdout.splitlines()]
        return {line.removeprefix("./") for line in lines if line}

    def diff(self, ref_a: str | None = None, ref_b: str | None = None, staged: bool = False) -> str:
        args = ["diff", "--no-ext-diff", "--no-textconv", "--no-color"]
        if staged:
            args.append("--cached")
        args += [r for r in (ref_a, ref_b) if r]
        return self._cmd.run(*args, "--").stdout

    def log(self, n: int = 20, branch: str | None = None, *, first_parent: bool = False) -> list[dict[str, str]]:
        """The last ``n`` commits, newest first in topological order (``first_parent``: only the
        branch's own line, not what merges brought in).

        Each: sha, author_name, author_email, date (ISO 8601), message.
        """
        if branch is None and not self._has_head():
            return []
        ref = f"refs/heads/{branch}" if branch else "HEAD"
        # Topological order: a parent never shows before its child, even within one second.
        out = self._cmd.run("log", "--topo-order", *(["--first-parent"] if first_parent else []),
                            f"--max-count={int(n)}", f"--format={_LOG_FORMAT}", ref, "--").stdout
        entries = []
        for record in filter(None, (r.strip("\n") for r in out.split("\x1e"))):
            sha, name, email, date, message = record.split("\x00", 4)
            entries.append({"sha": sha, "author_name": name, "author_email": email, "date": date,
                            "message": message.strip()})
        return entries

    def discard_changes(self, branch: str | None = None) -> list[str]:
        """The clean slate: drop staged and unstaged changes and every file git does not track, ignored
        files and nested repositories included, except ``keep_untracked``. Returns what was removed.

        Ignored files matter most: a conftest.py in a ``*.egg-info/`` or a planted ``build/`` left by
        one attempt's tests would otherwise be there for the next attempt's run. ``branch``: the checked-out
        branch, for the log, when the caller knows it (a task's worktree); else git is asked.
        """
        with self._lock:
            reset = self._cmd.run("reset", "-q", "--hard", "HEAD", check=False)
            if not reset.ok and self._has_head():  # no commit yet: nothing to reset to, only untracked files
                raise GitOperationError(f"git reset failed: {self._cmd.explain(reset)}")
            removed = self.remove_untracked(branch)
            log.info("git_changes_discarded", branch=branch or self.current_branch())
            return removed

    def remove_untracked(self, branch: str | None = None) -> list[str]:
        """The untracked half of :meth:`discard_changes` (writes nothing to .git); returns what went."""
        with self._lock:
            # -x: ignored files too; -ff: nested repositories too; -e: the allow-list (anchored paths).
            keep = [a for k in self.keep_untracked for a in ("-e", f"/{k.strip('/')}")]
            out = self._cmd.run("clean", "-ffdx", *keep).stdout
            removed = [line.removeprefix("Removing ") for line in out.splitlines() if line.startswith("Removing ")]
            if removed:
                log.info("workspace_cleaned", branch=branch or self.current_branch(), removed_count=len(removed),
                         removed=removed[:20])
            return removed

    def recover(self) -> list[str]:
        """Undo what a crash left behind: stale index.lock, stuck merge/rebase/cherry-pick/revert.

        Called at daemon start. Returns what was done, one phrase per action.
        """
        done: list[str] = []
        with self._lock:
            # Where every marker lives, in one git call (a worktree keeps its own under .git/worktrees/<name>).
            names = ("index.lock", "MERGE_HEAD", "CHERRY_PICK_HEAD", "REVERT_HEAD", "rebase-merge", "rebase-apply",
                     "rebase-apply/applying")
            where = dict(zip(names, self._git_paths(*names), strict=True))
            done += remove_stale_locks(where["index.lock"].parent)
            steps = (("MERGE_HEAD", ("merge", "--abort"), "aborted merge"),
                     ("CHERRY_PICK_HEAD", ("cherry-pick", "--abort"), "aborted cherry-pick"),
                     ("REVERT_HEAD", ("revert", "--abort"), "aborted revert"))
            for marker, args, phrase in steps:
                if where[marker].exists():
                    self._cmd.run(*args)
                    done.append(phrase)
            if where["rebase-merge"].exists() or where["rebase-apply"].exists():
                am = where["rebase-apply/applying"].exists()
                self._cmd.run(*(("am", "--abort") if am else ("rebase", "--abort")))
                done.append("aborted am" if am else "aborted rebase")
        if done:
            log.warning("git_recovered", actions=done)
        return done
