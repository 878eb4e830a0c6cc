"""Workspace: the file-system manager, git manager, test runner and deployer behind one lock.

Several workers share one working tree, so every step that checks out a branch,
writes files or runs tests holds ``lock`` and leaves the tree clean on the
configured branch when it lets go. LLM calls happen outside the lock.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog

from ai_agents.agents.models import CodeChange
from ai_agents.config.live import LiveConfig
from ai_agents.domain import Role
from ai_agents.errors import WorkspaceError
from ai_agents.file_system.paths import normalize
from ai_agents.memory.store import MemoryStore

log = structlog.get_logger("ai_agents.workspace")

MAX_SUMMARY_FILES = 30
# Files that change how tests are collected or run: a Developer editing them could skip or
# rewrite QA's tests, so they are QA's as much as the tests are.
TEST_HARNESS_FILES = frozenset({"conftest.py", "pytest.ini", ".pytest.ini", "pytest.toml", ".pytest.toml",
                                "pyproject.toml", "setup.cfg", "tox.ini", "package.json", "jest.config.js",
                                # An ignore rule for tests/ would make every later QA commit fail.
                                ".gitignore", ".gitattributes"})


class Workspace:
    def __init__(self, *, live: LiveConfig, fs: Any, git: Any, runner: Any, deployer: Any, memory: MemoryStore):
        self.live = live
        self.fs = fs
        self.git = git
        self.runner = runner
        self.deployer = deployer
        self.memory = memory
        self.lock = threading.RLock()

    @property
    def main_branch(self) -> str:
        return self.live.current.git.branch

    @contextmanager
    def on_branch(self, branch: str, *, create: bool = False) -> Iterator[None]:
        """Hold the lock with ``branch`` checked out; always end clean on the main branch."""
        with self.lock:
            self.git.checkout(self.main_branch)
            if create and not self.git.branch_exists(branch):
                self.git.create_branch(branch, from_ref=self.main_branch)
            self.git.checkout(branch)
            try:
                yield
            finally:
                self.git.discard_changes()
                self.git.checkout(self.main_branch)

    def recover(self) -> list[str]:
        """At start-up, undo what a crash left in the shared working tree; end clean on the main branch.

        Stale git locks and merges half-way are git's part (``git.recover``). A process killed
        in the middle of a step also leaves uncommitted files, or a merge that wrote the tree
        but not yet MERGE_HEAD, on whatever branch was checked out; every step ends clean, so
        anything uncommitted now is such a leftover and is discarded, or the next merge fails.
        """
        with self.lock:
            done = self.git.recover()
            if not self.git.is_clean():
                self.git.discard_changes()
                done.append("discarded uncommitted leftovers")
            if self.git.current_branch() != self.main_branch:
                self.git.checkout(self.main_branch)
                done.append(f"checked out {self.main_branch}")
        if done:
            log.warning("workspace_recovered", actions=done)
        return done

    def summary(self) -> str:
        """What the CEO and QA see of the workspace: files and the structure of Python modules."""
        with self.lock:
            files = sorted(str(p) for p in self.fs.find_files("**/*"))
            lines = [f"{len(files)} files: " + ", ".join(files[:80])]
            for path in [f for f in files if f.endswith(".py")][:MAX_SUMMARY_FILES]:
                try:
                    lines.append(self.fs.parse_code(path).summary())
                except WorkspaceError as e:
                    lines.append(f"{path}: not parsed ({e})")
        return "\n".join(lines)

    def write_document(self, path: str, content: str, agent: Role, message: str,
                       trailers: dict[str, str] | None = None) -> str | None:
        """Write an analysis result on the main branch and commit it as ``agent`` (``trailers``: the daemon's)."""
        with self.lock:
            self.git.checkout(self.main_branch)
            self.fs.write_file(path, content)
            if not self.live.current.git.auto_commit:
                return None
            try:
                return self.git.commit(message, agent=agent, files=[path], trailers=trailers)
            except Exception:
                # A refused commit (a secret in the document) must not leave the file on disk.
                self.git.discard_changes()
                raise

    def apply(self, change: CodeChange, forbidden: set[str]) -> tuple[list[str], list[str]]:
        """Write the Developer's files (lock held by the caller); returns (written, refused reasons)."""
        written, refused = [], []
        tests_dir = normalize(self.live.current.testing.tests_dir).as_posix()
        # Compared after normalising: "src/../tests/test_x.py" is QA's test as much as "tests/test_x.py".
        guarded = {normalize(p).as_posix() for p in forbidden}
        for f in change.files:
            try:
                path = normalize(f.path).as_posix()
            except WorkspaceError as e:
                refused.append(f"{f.path}: {e}")
                log.warning("write_refused", path=f.path, reason=str(e), agent="developer")
                continue
            name = path.rsplit("/", 1)[-1]
            if path in guarded or path.startswith(f"{tests_dir}/") or name in TEST_HARNESS_FILES:
                refused.append(f"{f.path}: the Developer may not change QA's tests")
                log.warning("write_refused", path=f.path, reason="tests belong to QA", agent="developer")
                continue
            try:
                self.fs.write_file(path, f.content)
                written.append(path)
            except WorkspaceError as e:
                refused.append(f"{f.path}: {e}")
                log.warning("write_refused", path=f.path, reason=str(e), agent="developer")
        return written, refused

    @staticmethod
    def contents(change: CodeChange, written: list[str]) -> dict[str, str]:
        """What :meth:`apply` wrote: path (as in ``written``) -> content."""
        contents: dict[str, str] = {}
        for f in change.files:
            try:
                contents[normalize(f.path).as_posix()] = f.content
            except WorkspaceError:
                continue
        return {p: contents[p] for p in written}

    def changed_by_tests(self, expected: dict[str, str]) -> list[str]:
        """Paths of ``expected`` (path -> content written) that a test run rewrote, deleted or swapped
        for a symlink (lock held by the caller). Tests run with the workspace writable; what is
        committed must be what was written and reviewed, never what a test left in its place."""
        changed = []
        root = self.fs.workspace_path
        for path, content in expected.items():
            target = root / path
            try:
                same = (os.path.realpath(target) == str(target) and stat.S_ISREG(target.lstat().st_mode)
                        and target.read_bytes() == content.encode("utf-8"))
            except OSError:
                same = False
            if not same:
                changed.append(path)
        if changed:
            log.warning("files_changed_by_tests", paths=changed)
        return changed

    def task_commits(self, branch: str, task_id: str) -> dict[str, str]:
        """Agent title ("QA", "Developer") -> sha of this task's newest commit by that agent on ``branch``
        (what a restart resumes from).

        From the daemon's own records only: the agent is the author identity the daemon set, the
        task the Task-Id of the trailer block it appended last; the model's text is never read. A
        commit whose Agent trailer disagrees with its author is ignored, with a warning.
        """
        if not self.git.branch_exists(branch):
            return {}
        found: dict[str, str] = {}
        for record in self.git.commit_records(50, branch=branch):
            if record.agent is None or record.trailers.get("Task-Id") != task_id:
                continue
            role = Role(record.agent)
            if record.trailers.get("Agent") != role.title:
                log.warning("commit_record_mismatch", sha=record.sha, author=record.author_email,
                            agent_trailer=record.trailers.get("Agent"), alert=True)
                continue
            found.setdefault(role.title, record.sha)
        return found
