"""Workspace: the file-system manager, git manager, test runner and deployer behind one lock.

Several workers share one working tree, so every step that checks out a branch,
writes files or runs tests holds ``lock`` and leaves the tree clean on the
configured branch when it lets go. LLM calls happen outside the lock.

Clean means a clean slate: every step starts and ends with nothing in the tree that git does not
track, ignored files included, except the allow-list (``file_system.keep_untracked`` and the
daemon's own files when they lie inside the workspace). Each test run happens inside one step, so
it sees only the committed tree plus what this step wrote: nothing an earlier attempt's code or
tests left behind. After each run the tree's size is checked against the configured caps.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import structlog

from ai_agents.agents.models import CodeChange
from ai_agents.config.live import LiveConfig
from ai_agents.deployment.manager import DeploymentManager
from ai_agents.domain import Role
from ai_agents.errors import GitOperationError, WorkspaceError
from ai_agents.file_system.manager import FileSystemManager
from ai_agents.file_system.paths import normalize
from ai_agents.file_system.usage import tree_usage
from ai_agents.git.manager import GitManager
from ai_agents.memory.store import MemoryStore
from ai_agents.testing.result import TestResult
from ai_agents.testing.runner import TestRunner

log = structlog.get_logger("ai_agents.workspace")


@dataclass(frozen=True)
class Tested:
    """A passing test run and the fingerprint (:meth:`Workspace.fingerprint`) of the tree it ran on."""

    fingerprint: str
    result: TestResult

MAX_SUMMARY_FILES = 30
# Files that change how tests are collected or run: a Developer editing them could skip or
# rewrite QA's tests, so they are QA's as much as the tests are.
TEST_HARNESS_FILES = frozenset({"conftest.py", "pytest.ini", ".pytest.ini", "pytest.toml", ".pytest.toml",
                                "pyproject.toml", "setup.cfg", "tox.ini", "package.json", "package-lock.json",
                                "jest.config.js", "jest.config.ts", "jest.config.cjs", "jest.config.mjs",
                                "jest.config.json", "babel.config.js", "babel.config.json", ".babelrc",
                                ".babelrc.js", "tsconfig.json", "requirements.txt", "requirements.lock",
                                # An ignore rule for tests/ would make every later QA commit fail.
                                ".gitignore", ".gitattributes"})


def paths_inside(root: Path, paths: Iterable[Path | None]) -> list[str]:
    """``paths`` that lie strictly inside ``root``, relative to it (the daemon's own files in the workspace)."""
    real_root = Path(os.path.realpath(root))
    found = []
    for p in paths:
        if p is None:
            continue
        real = Path(os.path.realpath(p))
        if real != real_root and real.is_relative_to(real_root):
            found.append(real.relative_to(real_root).as_posix())
    return list(dict.fromkeys(found))


class Workspace:
    def __init__(self, *, live: LiveConfig, fs: FileSystemManager, git: GitManager, runner: TestRunner,
                 deployer: DeploymentManager, memory: MemoryStore):
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
            # The clean slate (see the module docstring); tracked changes were reset when the last step ended.
            self.git.remove_untracked()
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
            # Ignored files count too (is_clean does not see them): a killed test run's leftovers.
            dirty = not self.git.is_clean()
            if self.git.discard_changes() or dirty:
                done.append("discarded uncommitted leftovers")
            if self.git.current_branch() != self.main_branch:
                self.git.checkout(self.main_branch)
                done.append(f"checked out {self.main_branch}")
        if done:
            log.warning("workspace_recovered", actions=done)
        return done

    def check_limits(self) -> None:
        """Raise WorkspaceError when the working tree (without .git and the allow-list) holds more
        than ``file_system.max_workspace_files`` entries or ``max_workspace_mb`` of disk (lock held).

        Called after every test run: the code under test can write there. The walk stops as soon as
        a cap is passed; the clean slate at the end of the step removes what was written.
        """
        cfg = self.live.current.file_system
        root = Path(os.path.realpath(self.fs.workspace_path))
        skip = {root / ".git", *(root / k for k in self.git.keep_untracked)}
        max_bytes = cfg.max_workspace_mb * 1024 * 1024
        files, used = tree_usage(root, stop_bytes=max_bytes, stop_files=cfg.max_workspace_files, skip=skip)
        if files > cfg.max_workspace_files or used > max_bytes:
            what = (f"more than {cfg.max_workspace_files} files and directories"
                    if files > cfg.max_workspace_files else f"more than {cfg.max_workspace_mb} MB")
            log.warning("workspace_over_limit", files=files, bytes=used, alert=True,
                        max_files=cfg.max_workspace_files, max_mb=cfg.max_workspace_mb)
            raise WorkspaceError(
                f"the workspace holds {what} after the test run (file_system.max_workspace_files / "
                "max_workspace_mb); the code or tests write too much, and everything untracked is removed")

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
        """Write a file on the main branch and commit it as ``agent`` (``trailers``: the daemon's).

        Straight onto main, outside the merge queue: the daemon uses it only with ``git.auto_commit``
        off (the file is written, nothing committed); its analysis documents go through the queue
        (``MergeQueue.write_document``). Tests and benchmarks seed main with it.
        """
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
        ignored = self._ignored(change)
        for f in change.files:
            try:
                path = normalize(f.path).as_posix()
            except WorkspaceError as e:
                refused.append(f"{f.path}: {e}")
                log.warning("write_refused", path=f.path, reason=str(e), agent="developer")
                continue
            name = path.rsplit("/", 1)[-1]
            if kept := next((k for k in self.git.keep_untracked if path == k or path.startswith(f"{k}/")), None):
                refused.append(f"{f.path}: {kept} is kept between test runs; nothing may be written there")
                log.warning("write_refused", path=f.path, reason="kept between test runs", agent="developer")
                continue
            if path in guarded or path.startswith(f"{tests_dir}/") or name in TEST_HARNESS_FILES:
                refused.append(f"{f.path}: the Developer may not change QA's tests")
                log.warning("write_refused", path=f.path, reason="tests belong to QA", agent="developer")
                continue
            try:
                if path in ignored:
                    self.fs.resolve(path)  # a protected path or a bad symlink is refused for that reason first
                    # Never committed, yet there for the tests; the clean slate would remove it anyway.
                    raise WorkspaceError("ignored by git (.gitignore): it would never be committed")
                self.fs.write_file(path, f.content)
                written.append(path)
            except WorkspaceError as e:
                refused.append(f"{f.path}: {e}")
                log.warning("write_refused", path=f.path, reason=str(e), agent="developer")
        return written, refused

    def _ignored(self, change: CodeChange) -> set[str]:
        return self.git.ignored(list(self.proposed(change)))

    @staticmethod
    def proposed(change: CodeChange) -> dict[str, str]:
        """The change's files, path (normalised) -> content; a path that cannot be normalised is left out (apply
        refuses it with its reason). A path given twice keeps its last content, as apply leaves it on disk."""
        files: dict[str, str] = {}
        for f in change.files:
            try:
                files[normalize(f.path).as_posix()] = f.content
            except WorkspaceError:
                continue
        return files

    @classmethod
    def contents(cls, change: CodeChange, written: list[str]) -> dict[str, str]:
        """What :meth:`apply` wrote: path (as in ``written``) -> content."""
        proposed = cls.proposed(change)
        return {p: proposed[p] for p in written}

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

    def verdict(self, paths: list[str], tests: list[str], expected: list[str], *,
                reuse: Tested | None = None) -> tuple[TestResult, Tested | None]:
        """The tests' verdict on the tree as it is (lock held by the caller): ``reuse``'s when it was given on
        byte for byte this tree (:meth:`fingerprint` of ``paths``, ``tests`` and ``expected``), else a fresh
        run of ``tests``. Returns (the result, the passing run to keep: ``reuse`` itself when it was taken;
        None when the run failed or left a file of ``paths`` other than it found it)."""
        before = self.fingerprint(paths, tests, expected)
        if reuse is not None and reuse.fingerprint == before:
            return reuse.result, reuse
        result = self.runner.run_tests(tests, expected=expected)
        same = result.passed and self.fingerprint(paths, tests, expected) == before
        return result, Tested(before, result) if same else None

    def fingerprint(self, paths: Iterable[str], tests: Iterable[str] = (), expected: Iterable[str] = ()) -> str:
        """What a test run's verdict is about (lock held by the caller): the checked-out commit, the bytes of
        ``paths`` as they are on disk now (a missing or non-regular file counts as such), the tests run and
        the test ids that had to pass. Two runs with equal fingerprints tested the same tree the same way."""
        digest = hashlib.sha256((self.git.rev("HEAD") or "-").encode())
        root = self.fs.workspace_path
        for path in sorted(set(paths)):
            target = root / path
            try:
                data = (target.read_bytes() if os.path.realpath(target) == str(target)
                        and stat.S_ISREG(target.lstat().st_mode) else b"\0not a regular file")
            except OSError:
                data = b"\0missing"
            digest.update(b"\0path\0" + path.encode() + b"\0" + hashlib.sha256(data).digest())
        for kind, items in ((b"test", tests), (b"expected", expected)):
            for item in sorted(set(items)):
                digest.update(b"\0" + kind + b"\0" + item.encode())
        return digest.hexdigest()

    def task_commits(self, branch: str, task_id: str) -> dict[str, str]:
        """Agent title ("QA", "Developer") -> sha of this task's newest commit by that agent on ``branch``
        (what a restart resumes from).

        From the daemon's own records only: the agent is the author identity the daemon set, the
        task the Task-Id of the trailer block it appended last; the model's text is never read. A
        commit whose Agent trailer disagrees with its author is ignored, with a warning.
        """
        try:
            records = self.git.commit_records(50, branch=branch, first_parent=True)
        except GitOperationError:
            if self.git.branch_exists(branch):
                raise
            return {}  # asked only when the log fails: one git call at every stage's start, not two
        found: dict[str, str] = {}
        for record in records:
            if record.agent is None or record.trailers.get("Task-Id") != task_id:
                continue
            role = Role(record.agent)
            if record.trailers.get("Agent") != role.title:
                log.warning("commit_record_mismatch", sha=record.sha, author=record.author_email,
                            agent_trailer=record.trailers.get("Agent"), alert=True)
                continue
            found.setdefault(role.title, record.sha)
        return found
