"""SuiteRuns: the merge queue's full-suite runs, and the worktrees they run in.

The queue's verdict on a merge candidate is a run of the full suite on exactly that commit, judged by
the daemon on QA's test ids (read from the candidate's committed files). It runs in the queue's own
worktree (the run that decides, in the queue's serial part), or ahead of that part in a worktree for
runs ahead (a branch waiting behind others, a change being reviewed: :mod:`in_review`) at a lower CPU
priority, since such a run may be thrown away.

Worktrees for runs ahead are kept and reused (a checkout of a large repository costs far more than
resetting one to another commit): one per run going on at once, so at most one per merge-stage worker
and one per Developer worker. Each keeps its own runner, whose next run's process is started ahead.
They are swept at start like any leftover (``worktrees.PRETEST_PREFIX``).

A green run's tree is kept in memory (:class:`GreenTrees`): a candidate with exactly that tree and the
same QA files to check needs no run of its own. Nothing else makes a tree green.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import structlog

from ai_agents import attempt as current_lease
from ai_agents.errors import WorkspaceError
from ai_agents.file_system.paths import normalize
from ai_agents.git import GitManager
from ai_agents.orchestrator.review_line import GreenTrees, Pace
from ai_agents.testing import TestRunner
from ai_agents.testing.verdict import expected_test_ids

log = structlog.get_logger("ai_agents.merge_queue")

PRETEST_NICE = 10  # runs ahead may be thrown away: they yield the CPU to the runs whose verdict counts
# The processes prepare() asks for start this long after the daemon starts (see prepare).
PREPARE_SETTLE = 1.0

Verdict = tuple[list[str] | None, float]  # (None when green, else the failures; the run's seconds)


class SuiteRuns:
    """See the module docstring. ``path``: the queue's own worktree; ``runner``: its test runner."""

    def __init__(self, *, git: GitManager, path: Path, runner: TestRunner):
        self.git = git
        self.path = Path(path)
        self.runner = runner
        self._free: list[Path] = []
        self._made = 0
        self._runners: dict[Path, TestRunner] = {}  # one per worktree for runs ahead, kept with it
        self._lock = threading.Lock()
        self._green = GreenTrees()  # trees a full run passed on
        self.pace = Pace()  # how long a full run takes these days

    # --- worktrees for runs ahead ----------------------------------------------------------
    def take_slot(self) -> Path:
        """A worktree directory for runs ahead that no other run is using (made on first use)."""
        with self._lock:
            if self._free:
                return self._free.pop()
            self._made += 1
            return self._slot(self._made)

    def give_back(self, slot: Path) -> None:
        with self._lock:
            self._free.append(slot)

    def runner_at(self, slot: Path) -> TestRunner:
        """The runner of the worktree for runs ahead at ``slot`` (kept with it), at a lower CPU priority."""
        with self._lock:
            if (runner := self._runners.get(slot)) is None:
                runner = self._runners[slot] = self.runner.at(slot, nice=PRETEST_NICE)
            return runner

    def discard(self, slot: Path) -> None:
        """After an error in ``slot``: whatever state it is in, the next run there makes it afresh."""
        self.runner_at(slot).cool()
        self.git.remove_worktree(slot)

    def _slot(self, n: int) -> Path:
        return self.path.with_name(f"{self.path.name}-ahead-{n}")

    def prepare(self, main: str, ahead: int) -> None:
        """The queue's worktree and ``ahead`` worktrees for runs ahead made at ``main``, and each one's next
        run's process started (``PREPARE_SETTLE`` seconds from now): see MergeQueue.prepare."""
        self.git.ensure_worktree(self.path, main)
        self.runner.warm(settle=PREPARE_SETTLE)
        with self._lock:
            slots = [self._slot(n) for n in range(self._made + 1, self._made + 1 + max(0, ahead))]
            self._made += len(slots)
        made: list[Path] = []
        try:
            for slot in slots:
                self.git.ensure_worktree(slot, main)
                self.runner_at(slot).warm(settle=PREPARE_SETTLE)
                made.append(slot)
        finally:
            with self._lock:  # taken from the end: the first run ahead gets -ahead-1
                self._free.extend(reversed(made))

    def close(self) -> None:
        """At shutdown: stop the test processes started ahead for the next runs."""
        with self._lock:
            runners = [self.runner, *self._runners.values()]
        for runner in runners:
            runner.cool()

    # --- verdicts --------------------------------------------------------------------------
    def green(self, tree: str | None, qa_files: set[str]) -> float | None:
        """The seconds of the run that passed on ``tree`` with ``qa_files`` to check, or None."""
        return self._green.seconds(tree, qa_files)

    def vouch(self, tree: str, qa_files: set[str], seconds: float) -> None:
        """A full run passed on ``tree`` with ``qa_files`` checked (the caller checked its lease)."""
        self._green.add(tree, qa_files, seconds)

    def verdict(self, task_id: str, qa_files: set[str], candidate: str, tree: str | None,
                root: Path | None = None) -> Verdict:
        """The full suite's verdict on ``candidate`` (as :meth:`test`): a run in review's when its ``tree`` (given
        when it was made as objects only, not checked out yet) passed there, else a run here: in the queue's
        worktree, or at ``root`` (a worktree for runs ahead: one run, its next process started after)."""
        if (seconds := self.green(tree, qa_files)) is not None:
            log.info("merge_queue_tested_in_review", task_id=task_id, candidate=candidate, seconds=seconds)
            return None, seconds
        if tree is not None:
            self.git.ensure_worktree(root or self.path, candidate)
        if root is None:
            return self.test(task_id, qa_files)
        verdict = self.test(task_id, qa_files, root=root, runs=1)
        self.runner_at(root).warm(settle=0.0)
        return verdict

    def test(self, task_id: str, qa_files: set[str], *, root: Path | None = None, runs: int = 2,
             stop: Callable[[], bool] | None = None) -> Verdict:
        """The full suite on the candidate checked out at ``root`` (by default the queue's worktree). A red run
        is run once more (``runs``) before it counts. ``stop``: once true, the run is killed (TestRunStopped)."""
        root = root or self.path
        runner = self.runner if root == self.path else self.runner_at(root)
        expected = self._expected(qa_files, root)
        failures: list[str] = []
        seconds = 0.0
        for run in range(1, runs + 1):
            started = time.monotonic()
            result = runner.run_tests(expected=expected, stop=stop)
            seconds = round(time.monotonic() - started, 3)
            self.pace.add(seconds)
            current_lease.progress()
            log.info("merge_queue_tested", task_id=task_id, run=run, ahead=root != self.path, outcome=result.outcome,
                     passed=result.passed_count, failed=result.failed_count, seconds=seconds)
            if result.passed:
                if run == 2:
                    log.warning("merge_queue_flaky", task_id=task_id, first_failures=failures[:5], alert=True)
                return None, seconds
            failures = [f"{f.test_name}: {str(f.error_message)[:300]}" for f in result.failures] or [
                f"{result.outcome}: {result.output_tail[-1500:]}"]
            failures += [f"tampering: {t}" for t in result.tampering[:3]]
        return failures, seconds

    def _expected(self, qa_files: set[str], root: Path) -> list[str]:
        """QA's test ids, read by the daemon from the candidate's committed files (checked out at ``root``)."""
        expected: list[str] = []
        for path in sorted(qa_files):
            try:
                target = root / normalize(path).as_posix()
            except WorkspaceError:
                continue
            if target.is_file() and not target.is_symlink():
                expected += expected_test_ids(path, target.read_text(encoding="utf-8", errors="replace"))
        return expected
