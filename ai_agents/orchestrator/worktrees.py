"""Worktrees: one git worktree per code task, under the daemon's data directory.

A code task's QA and Developer stages work in ``<data>/worktrees/<task id>``, with the task branch
checked out there for the task's whole life: created when the task starts, kept while it waits or
is resumed, removed after its branch is merged or when an attempt fails (a retry makes it again
from the branch, where everything committed lives). Each worktree has its own file-system manager,
git manager, sandboxed test runner and lock (a :class:`TaskWorkspace`), so tasks write and test in
parallel; the main working tree only takes the merge queue's fast-forwards and documents.

The number of worktrees is capped (``file_system.max_worktrees``); at the cap a new task waits
(:class:`~ai_agents.errors.CapacityWait`: released, not counted as an attempt). ``sweep`` at start
removes every worktree no unfinished task owns. No ``git stash`` anywhere.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog

from ai_agents.errors import CapacityWait, WorkspaceError
from ai_agents.file_system import FileSystemManager
from ai_agents.git import GitManager
from ai_agents.orchestrator.workspace import Workspace
from ai_agents.testing import TestRunner

log = structlog.get_logger("ai_agents.worktrees")

QUEUE_DIR = "merge-queue"  # the merge queue's own worktree, beside the tasks' (never swept here)
WAIT_FOR_SLOT_SECONDS = 5.0


class TaskWorkspace(Workspace):
    """A Workspace rooted at one task's worktree: its branch stays checked out; its own lock."""

    def __init__(self, *, branch: str, path: Path, **parts: object):
        super().__init__(**parts)  # type: ignore[arg-type]
        self.branch = branch
        self.path = path

    @contextmanager
    def on_branch(self, branch: str, *, create: bool = False) -> Iterator[None]:
        """Hold this worktree's lock; the clean slate before and after (the branch never changes)."""
        if branch != self.branch:
            raise WorkspaceError(f"the worktree of {self.branch} cannot work on {branch}")
        with self.lock:
            self.git.remove_untracked()
            try:
                yield
            finally:
                self.git.discard_changes()

    def recover(self) -> list[str]:
        with self.lock:
            done = self.git.recover()
            if self.git.discard_changes():
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
        self._lock = threading.Condition()

    def path_for(self, task_id: str) -> Path:
        if not task_id.replace("-", "").isalnum():
            raise WorkspaceError(f"task id {task_id!r} cannot name a worktree")
        return self.root / task_id

    def task_dirs(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if p.name != QUEUE_DIR)

    def acquire(self, task_id: str, branch: str) -> TaskWorkspace:
        """The task's workspace: its worktree on ``branch`` (created, from main, when missing)."""
        git = self.main.git
        with self._lock:
            if (ws := self._open.get(task_id)) is not None and ws.branch == branch and (ws.path / ".git").is_file():
                return ws
            path = self.path_for(task_id)
            if not (path / ".git").is_file():
                self._lock.wait_for(lambda: len(self.task_dirs()) < self._cap(), timeout=WAIT_FOR_SLOT_SECONDS)
                if len(self.task_dirs()) >= self._cap():
                    log.info("worktree_cap_reached", task_id=task_id, cap=self._cap())
                    raise CapacityWait(f"{self._cap()} worktrees in use (file_system.max_worktrees); the task waits")
                if path.exists():
                    shutil.rmtree(path)
                git.prune_worktrees()
                if not git.branch_exists(branch):
                    git.create_branch(branch, from_ref=self.main.main_branch)
                git.add_worktree(path, branch)
                log.info("worktree_created", task_id=task_id, branch=branch, path=str(path))
            fs, task_git, runner = self._parts(path)
            ws = TaskWorkspace(branch=branch, path=path, live=self.main.live, fs=fs, git=task_git, runner=runner,
                               deployer=self.main.deployer, memory=self.main.memory)
            if done := ws.recover():
                log.warning("worktree_recovered", task_id=task_id, actions=done)
            self._open[task_id] = ws
            return ws

    def release(self, task_id: str) -> None:
        """Remove the task's worktree (its branch and commits stay)."""
        with self._lock:
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
        for path in self.task_dirs():
            if path.name not in keep:
                self.main.git.remove_worktree(path)
                removed.append(path.name)
        self.main.git.prune_worktrees()
        if removed:
            log.warning("worktrees_swept", removed=removed)
        return removed
