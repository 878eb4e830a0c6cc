"""Worktrees: one git worktree per code task, under the daemon's data directory.

A code task's QA and Developer stages work in ``<data>/worktrees/<task id>``, with the task branch
checked out there for the task's whole life: created when the task starts, kept while it waits or is
resumed, removed after its branch is merged or when an attempt fails (a retry makes it again from
the branch, where everything committed lives). Only by the attempt that last took it: an attempt
whose task was reclaimed meanwhile (it lost its lease) leaves it to the attempt that holds the lease
now. Each worktree has its own file-system manager, git manager, sandboxed test runner and lock (a
:class:`TaskWorkspace`), so tasks write and test in parallel; the main working tree only takes the
merge queue's fast-forwards and documents.

The number of worktrees and their disk use are capped (``file_system.max_worktrees``,
``max_worktrees_mb``); at a cap a new task waits (:class:`~ai_agents.errors.CapacityWait`: released,
not counted as an attempt). With ``git.shared_remote`` a worktree's branch is first brought up to
the remote's (created from it when missing here): another node may have worked on the task.
``sweep`` at start removes every worktree no unfinished task owns. No ``git stash`` anywhere.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog

from ai_agents import attempt as current_attempt
from ai_agents.config.live import LiveConfig
from ai_agents.deployment.manager import DeploymentManager
from ai_agents.errors import CapacityWait, GitOperationError, WorkspaceError
from ai_agents.file_system import FileSystemManager
from ai_agents.file_system.usage import tree_usage
from ai_agents.git import GitManager
from ai_agents.memory.store import MemoryStore
from ai_agents.orchestrator.workspace import Workspace
from ai_agents.testing import TestRunner

log = structlog.get_logger("ai_agents.worktrees")

QUEUE_DIR = "merge-queue"  # the merge queue's own worktree, beside the tasks' (never swept here)
PRETEST_PREFIX = QUEUE_DIR + "-"  # + "ahead-<n>": where waiting branches are tested ahead (swept at start)
WAIT_FOR_SLOT_SECONDS = 5.0


def disk_use(root: Path, stop_at: int) -> int:
    """Bytes on disk under ``root`` (symlinks not followed); the walk stops once ``stop_at`` is passed."""
    return tree_usage(root, stop_bytes=stop_at)[1]


class TaskWorkspace(Workspace):
    """A Workspace rooted at one task's worktree: its branch stays checked out; its own lock."""

    def __init__(self, *, branch: str, path: Path, live: LiveConfig, fs: FileSystemManager, git: GitManager,
                 runner: TestRunner, deployer: DeploymentManager, memory: MemoryStore):
        super().__init__(live=live, fs=fs, git=git, runner=runner, deployer=deployer, memory=memory)
        self.branch = branch
        self.path = path

    @contextmanager
    def on_branch(self, branch: str, *, create: bool = False) -> Iterator[None]:
        """Hold this worktree's lock; the clean slate before and after (the branch never changes)."""
        if branch != self.branch:
            raise WorkspaceError(f"the worktree of {self.branch} cannot work on {branch}")
        with self.lock:
            self.git.remove_untracked(self.branch)
            try:
                yield
            finally:
                self.git.discard_changes(self.branch)

    def recover(self) -> list[str]:
        with self.lock:
            done = self.git.recover()
            if self.git.discard_changes(self.branch):
                done.append("discarded uncommitted leftovers")
        return done


PartsFactory = Callable[[Path], tuple[FileSystemManager, GitManager, TestRunner]]


class Worktrees:
    """The task worktrees of one repository (see the module docstring)."""

    def __init__(self, *, main: Workspace, root: Path, parts: PartsFactory, cap: Callable[[], int]):
        self.main = main
        self.root = Path(root)
        self._parts = parts
        self._cap = cap
        self._open: dict[str, TaskWorkspace] = {}
        self._takers: dict[str, object] = {}  # task id -> the attempt (its lease guard) that last acquired it
        self._lock = threading.Condition()

    def path_for(self, task_id: str) -> Path:
        if not task_id.replace("-", "").isalnum():
            raise WorkspaceError(f"task id {task_id!r} cannot name a worktree")
        return self.root / task_id

    def task_dirs(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if p.name != QUEUE_DIR and not p.name.startswith(PRETEST_PREFIX))

    def pretest_dirs(self) -> list[Path]:
        return sorted(self.root.glob(PRETEST_PREFIX + "*")) if self.root.is_dir() else []

    def acquire(self, task_id: str, branch: str) -> TaskWorkspace:
        """The task's workspace: its worktree on ``branch`` (created, from the remote's branch or from
        main, when missing)."""
        git = self.main.git
        # Another node may have worked on this task: its branch on the shared remote is the truth
        # (fetched outside the lock: the network is slow; the branch is this task's alone).
        taken = self._take_remote_branch(branch)
        with self._lock:
            self._takers[task_id] = current_attempt.current()
            if (ws := self._open.get(task_id)) is not None and ws.branch == branch and (ws.path / ".git").is_file():
                if taken:
                    ws.git.sync_to_head()
                return ws
            path = self.path_for(task_id)
            if (path / ".git").is_file() and git.worktree_branch(path) != branch:
                # Not on its branch: a `git worktree add` killed midway leaves it detached, and commits made
                # there would never reach the branch. Made again from the branch.
                log.warning("worktree_replaced", task_id=task_id, branch=branch, reason="not on its branch")
                git.remove_worktree(path)
            fresh = not (path / ".git").is_file()
            if fresh:
                self._wait_for_room(task_id)
                if path.exists():
                    shutil.rmtree(path)
                try:
                    git.add_worktree(path, branch, from_ref=self.main.main_branch)
                except GitOperationError:
                    # Still registered by a crash (its directory gone): git's records pruned, then once more
                    # (git made the branch before it looked at the path: it exists now).
                    git.prune_worktrees()
                    git.add_worktree(path, branch, from_ref=self.main.main_branch)
                log.info("worktree_created", task_id=task_id, branch=branch, path=str(path), from_remote=taken)
            fs, task_git, runner = self._parts(path)
            if taken:
                task_git.sync_to_head()  # the branch checked out here was moved to the remote's
            ws = TaskWorkspace(branch=branch, path=path, live=self.main.live, fs=fs, git=task_git, runner=runner,
                               deployer=self.main.deployer, memory=self.main.memory)
            # A worktree just made holds nothing to recover; one found on disk may (a crash's leftovers).
            if not fresh and (done := ws.recover()):
                log.warning("worktree_recovered", task_id=task_id, actions=done)
            self._open[task_id] = ws
            return ws

    def _take_remote_branch(self, branch: str) -> str | None:
        """With ``git.shared_remote``: fetch, and make the local branch at least the remote's."""
        if not self.main.live.current.git.shared_remote:
            return None
        git = self.main.git
        git.fetch()
        return git.take_remote_branch(branch)

    def _wait_for_room(self, task_id: str) -> None:
        """Wait a little for a free slot (count and disk caps); then CapacityWait (lock held)."""
        def full() -> str | None:
            cfg = self.main.live.current.file_system
            if len(self.task_dirs()) >= self._cap():
                return f"{self._cap()} worktrees in use (file_system.max_worktrees)"
            if (used := disk_use(self.root, cfg.max_worktrees_mb * 1024 * 1024)) >= cfg.max_worktrees_mb * 1024 * 1024:
                return f"the worktrees use {used // (1024 * 1024)} MB (file_system.max_worktrees_mb)"
            return None
        self._lock.wait_for(lambda: full() is None, timeout=WAIT_FOR_SLOT_SECONDS)
        if (why := full()) is not None:
            log.info("worktree_cap_reached", task_id=task_id, reason=why)
            raise CapacityWait(f"{why}; the task waits")

    def release(self, task_id: str) -> None:
        """Remove the task's worktree (its branch and commits stay), unless another attempt took it since the
        calling one did: a reclaimed task's earlier attempt, which lost its lease, must not pull the worktree
        from under the attempt that holds the lease now (that one releases it, or the sweep at start)."""
        with self._lock:
            if self._takers.get(task_id, current_attempt.current()) is not current_attempt.current():
                log.info("worktree_kept", task_id=task_id, reason="taken by a later attempt of the task")
                return
            self._takers.pop(task_id, None)
            self._open.pop(task_id, None)
            path = self.path_for(task_id)
            if path.exists():
                self.main.git.remove_worktree(path)
                log.info("worktree_removed", task_id=task_id, path=str(path))
            self._lock.notify_all()

    def sweep(self, owners: Iterable[str]) -> list[str]:
        """At start: remove every task worktree no unfinished task in ``owners`` owns; prune git's records."""
        keep = set(owners)
        removed = []
        for path in [*self.task_dirs(), *self.pretest_dirs()]:  # a crash's pretests are leftovers too
            if path.name not in keep:
                self.main.git.remove_worktree(path)
                removed.append(path.name)
        self.main.git.prune_worktrees()
        if removed:
            log.warning("worktrees_swept", removed=removed)
        return removed
