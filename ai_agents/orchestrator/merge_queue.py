"""MergeQueue: the only way a task's branch reaches the main branch, one branch at a time.

For an approved branch the queue, serially: brings it up to date with the current main (rebases
it onto main, or merges main into it: ``git.integration``), builds the --no-ff merge commit whose
first parent is main, runs the FULL suite on exactly that commit (in its own detached worktree,
with the daemon's verdict on QA's test ids), checks the lease, and only then fast-forwards main
to it. Main's first-parent history is therefore tested at every commit.

A conflict or a red suite is an outcome, not an error: the caller sends the task back to the
Developer with the conflict hunks or the failures. A red suite is run once more first; if that
run passes, the failure was unrelated flakiness and is logged (``merge_queue_flaky``).

Crash safety: each step is recorded in the ``merge_queue`` row (SQLite) before the next one. A
restart finds a candidate already in main (merged, nothing to do: the row's candidate, the branch's
tip or a first-parent merge with the task's ``Task-Id`` trailer), a candidate tested on the
current main (fast-forward without testing again), or anything else (build and test again).
The fast-forward itself is a compare-and-swap, so nothing is merged twice.

Several daemons (``git.shared_remote``): the queue integrates through the remote. It fetches and
builds on the remote's main, and moves it by ``push --force-with-lease=main:<the sha it was built
on>``; a rejected push (another node merged meanwhile) means fetch, rebuild and test again, after a
random, growing wait (exponential back-off with full jitter: nodes that lost together do not retry in
step, and one that keeps losing gives way until the others' bursts pass). After ``SHARED_TRIES`` the task
is requeued without counting an attempt (:class:`~ai_agents.errors.MainBusy`): losing a race is not the
task's failure. The local main only follows the remote's. Task branches are published as they are
committed (:meth:`publish`), so another node can resume a task from its branch.

The full-suite runs and the worktrees for runs ahead are :class:`~ai_agents.orchestrator.suite_runs.SuiteRuns`
(``suite``). While the Tech Lead reviews a change whose tests passed, the candidate the queue would most likely
build for it is tested (``in_review``: :mod:`~ai_agents.orchestrator.in_review`, ``git.test_in_review``); when
the queue's candidate has exactly a tree that passed there (and the same QA files to check), the suite ran on
those bytes and is not run again.

Documents (analysis results) reach main through the queue too (:meth:`write_document`): committed
on top of the current main, tested unless plain text, and fast-forwarded like a merge.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar, cast

import structlog
import tenacity
from pydantic import BaseModel, Field

from ai_agents import attempt as current_lease
from ai_agents.domain import Role, Task, iso, utcnow
from ai_agents.errors import (
    AgentsError,
    GitOperationError,
    LeaseLost,
    MainBusy,
    MergeConflictError,
    TaskFailedError,
    WorkspaceError,
)
from ai_agents.file_system import FileSystemManager
from ai_agents.file_system.paths import normalize
from ai_agents.git import GitManager
from ai_agents.memory.storage import Storage
from ai_agents.orchestrator.in_review import ReviewRuns
from ai_agents.orchestrator.merge_line import WaitingLine
from ai_agents.orchestrator.suite_runs import SuiteRuns
from ai_agents.testing import TestRunner

log = structlog.get_logger("ai_agents.merge_queue")
T = TypeVar("T")
MAX_REBUILDS = 5  # main moved between the test and the fast-forward this often: give up for now
# Several nodes (git.shared_remote): tries per merge, and the back-off between them (seconds: the n-th wait
# is drawn from [0, min(cap, first * 2**(n-1))]); ~8 s of waits on average over a merge's tries.
SHARED_TRIES = 8
BACKOFF_FIRST, BACKOFF_CAP = 0.25, 4.0
TEXT_SUFFIXES = (".md", ".txt", ".rst")  # documents no test can import: committed without a suite run


class QueueState(str, Enum):
    QUEUED = "queued"
    TESTING = "testing"    # candidate built on base_sha; its suite is running (or was, when the daemon died)
    TESTED = "tested"      # candidate green on base_sha: fast-forward main if it is still base_sha
    MERGED = "merged"
    RETURNED = "returned"  # sent back to the Developer (conflict or red suite)


class MergeOutcome(BaseModel):
    merged: bool
    merge_commit: str | None = None
    reason: str = "merged"          # merged | conflict | red
    feedback: list[str] = Field(default_factory=list)
    test_seconds: float | None = None


class CatchUp(BaseModel):
    """What bringing a task's branch up to date before an attempt did (:meth:`MergeQueue.catch_up`)."""

    files: list[str]                                           # touched by the task and changed on main
    merged: dict[str, str] = Field(default_factory=dict)       # the attempt's files merged onto main's
    conflicts: list[str] = Field(default_factory=list)         # the attempt's files that conflict
    hunks: str = ""

    def feedback(self, main_branch: str) -> str:
        return (f"Conflict hunks: {main_branch} changed {', '.join(self.conflicts)} since your branch was cut "
                f"and your change conflicts with it; the branch now holds the current {main_branch}: write the "
                f"change again against it.\n{self.hunks}")


class MergeQueue:
    """See the module docstring. ``path``: the queue's own worktree, under the daemon's data directory."""

    def __init__(self, *, git: GitManager, db: Storage, path: Path, runner: TestRunner, main_branch: str,
                 integration: Callable[[], str], workspace_lock: AbstractContextManager[object],
                 shared_remote: bool = False, fs: FileSystemManager | None = None):
        self.git = git
        self.shared_remote = shared_remote  # integrate through the remote's main (git.shared_remote)
        self._fs = fs  # the main workspace's file-system manager: what a document path may be
        self.db = db
        self.path = Path(path)
        self.main_branch = main_branch
        self._integration = integration  # () -> "merge" | "rebase", read live
        self._workspace_lock = workspace_lock  # the main working tree's lock: held only for the fast-forward
        self._lock = threading.Lock()  # the queue is serial
        self._line = WaitingLine()  # who is in front of whom, and what each would make main
        self.backoff = (BACKOFF_FIRST, BACKOFF_CAP)  # shared remote: (first, cap) of the waits between tries
        # The full-suite runs: in the queue's worktree, and ahead of the serial part in worktrees of their own.
        self.suite = SuiteRuns(git=git, path=self.path, runner=runner)
        # Candidates tested while their changes are reviewed (git.test_in_review).
        self.in_review = ReviewRuns(git=git, suite=self.suite, main_branch=main_branch, integration=integration)

    # --- rows ---------------------------------------------------------------------------
    def row(self, task_id: str) -> dict[str, Any] | None:
        return self.db.query_one("SELECT * FROM merge_queue WHERE task_id = ?", (task_id,))

    def _update(self, task_id: str, **fields: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.db.execute(f"UPDATE merge_queue SET {sets}, updated_at = ? WHERE task_id = ?",
                        (*[v.value if isinstance(v, Enum) else v for v in fields.values()], iso(utcnow()), task_id))

    def _enter(self, task_id: str, branch: str) -> dict[str, Any]:
        self.db.execute("INSERT INTO merge_queue (task_id, branch, state, updated_at) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT(task_id) DO UPDATE SET branch = excluded.branch, state = CASE "
                        "WHEN merge_queue.state = 'returned' THEN 'queued' ELSE merge_queue.state END",
                        (task_id, branch, QueueState.QUEUED.value, iso(utcnow())))
        row = self.row(task_id)
        assert row is not None
        return row

    # --- the queue ------------------------------------------------------------------------
    def merge(self, task: Task, branch: str, qa_files: set[str]) -> MergeOutcome:
        """Bring ``branch`` into main through the queue (see the module docstring). While branches are in
        front of it, this one is tested ahead on top of the candidate of the one just in front (:meth:`_pretest`)."""
        row = self._enter(task.id, branch)
        log.info("merge_queue_entered", task_id=task.id, branch=branch, position=row["id"], state=row["state"])
        ticket = self._line.join()
        tested_on: str | None = None
        slot: Path | None = None
        merged = False
        try:
            while (ahead := self._line.wait(ticket, tested_on)) is not None:
                tested_on = ahead
                slot = slot or self.suite.take_slot()
                self._line.publish(ticket, self._pretest(task, branch, qa_files, ahead, slot, ticket))
            with self._lock:
                outcome = self._until_main_holds(lambda: self._step(task, branch, qa_files, ticket), branch)
            merged = outcome.merged
            return outcome
        finally:
            if not merged:  # sent back (or an error): the changes reviewed after it are not built on it
                self.in_review.withdraw(task.id)
            self._line.leave(ticket)
            if slot is not None:
                self.suite.give_back(slot)
            # The next candidate's run finds its process started (its imports done) outside the serial part:
            # at once, as the next branch may be waiting already (no model answer comes first here).
            self.suite.runner.warm(settle=0.0)

    def prepare(self, ahead: int = 0) -> None:
        """At start, before any branch arrives: the queue's worktree and ``ahead`` worktrees for runs ahead
        made at main, and each one's next run's process started, so the first branches are tested as quickly
        as the ones after them (a run whose process is started at the run costs three times the CPU, and the
        first branches arrive together). The processes start ``PREPARE_SETTLE`` seconds later: a daemon is
        often started with tasks waiting, whose first steps (worktrees, model requests) go first; the first
        branch comes at least one model answer after that. Never raises: a merge makes what is missing."""
        try:
            if (main := self.git.rev(self.main_branch)) is not None:
                self.suite.prepare(main, ahead)
        except AgentsError as e:
            log.info("merge_queue_prepare_skipped", error=str(e)[:300])

    def close(self) -> None:
        """At shutdown: stop the test processes started ahead for the queue's next runs."""
        self.suite.close()

    def _pretest(self, task: Task, branch: str, qa_files: set[str], ahead: str, path: Path,
                 ticket: int) -> str | None:
        """Build and test this branch's candidate on top of ``ahead`` (the candidate the branch in front would
        make main), in a worktree of its own, at a lower CPU priority: if main becomes ``ahead``, this
        candidate, tested on exactly the tree it would make main, is fast-forwarded without testing again (the
        row says TESTED on base ``ahead``). The candidate when green, else None. A conflict, a red run or an
        error here proves nothing (``ahead`` may never merge): the branch is built and tested on main as
        usual. With ``git.integration: rebase`` a branch is only ever rebased onto main itself: nothing ahead.
        ``path``: the worktree to use, this branch's alone while it waits (reset to ``ahead`` first). The candidate
        is published in the line as soon as it is built, so the branch behind this one is tested on top of it
        while this run goes on (as GitLab's merge trains do); the caller publishes the outcome (None when red)."""
        if self._integration() != "merge":
            return None
        try:
            tip = self.git.rev(branch)
            if tip is None or self.git.is_ancestor(tip, ahead):
                return None
            message, trailers = self._merge_message(task, branch)
            # Made as objects first and offered to the branch behind before it is checked out here: in a train,
            # each candidate waits for the one in front of it to be made, not for its files to be written.
            made = self.git.merge_commit(ahead, tip, message=message, trailers=trailers)
            if made is not None:
                candidate = made.commit
                self._line.publish(ticket, candidate)
            else:  # a conflict (or a git without merge-tree): made in the worktree, as git merge does
                cmd = self.git.ensure_worktree(path, ahead)
                try:
                    candidate = self.git.merge_detached(cmd, ahead, tip, message=message, trailers=trailers)
                except MergeConflictError:
                    return None
                self._line.publish(ticket, candidate)
            red, seconds = self.suite.verdict(task.id, qa_files, candidate, made.tree if made else None, root=path)
        except LeaseLost:
            raise
        except AgentsError as e:  # only the time it would have saved is lost
            log.warning("merge_queue_pretest_failed", task_id=task.id, error=str(e)[:300])
            self.suite.discard(path)
            return None
        log.info("merge_queue_pretested", task_id=task.id, base=ahead, candidate=candidate, green=red is None,
                 seconds=seconds)
        if red is not None:
            return None
        current_lease.check()  # fencing: only the attempt holding the lease records a tested candidate
        self._update(task.id, state=QueueState.TESTED, base_sha=ahead, tip_sha=tip, candidate_sha=candidate,
                     test_seconds=seconds)
        return candidate

    def _step(self, task: Task, branch: str, qa_files: set[str], ticket: int) -> MergeOutcome | None:
        row = self.row(task.id) or {}
        tested, seconds = row.get("candidate_sha"), row.get("test_seconds")
        if self.shared_remote:
            main, tip, have = self._main(), self.git.rev(branch), None
        else:  # the queue's serial part: main, the branch and the tested candidate read with one git call
            revs = self.git.revs(self.main_branch, branch, *([str(tested)] if tested else []))
            if revs[0] is None:
                raise GitOperationError(f"there is no {self.main_branch} branch")
            main, tip, have = revs[0], revs[1], revs[2] if tested else None
        if tip is None:
            raise TaskFailedError(f"branch {branch} is gone; nothing to merge")
        # Tested on exactly this main, with this tip: none of it can be in main (its candidate's first parent
        # is main, and the tip was not in that base when the candidate was made), so the checks that it was
        # merged already (three git calls, in the queue's serial part) are skipped.
        ready = (row.get("state") == QueueState.TESTED.value and row.get("base_sha") == main
                 and row.get("tip_sha") == tip and bool(tested))
        if not ready and (done := self._already_merged(task.id, row, main, tip)) is not None:
            return self._merged(task, done, None, resumed=True)  # merged before a crash: never twice
        if ready and (have or self.git.rev(str(tested))):
            candidate = str(tested)
            log.info("merge_queue_resumed_tested", task_id=task.id, candidate=candidate)
            self._line.publish(ticket, candidate)
        else:
            built = self._build(task, branch, main, tip)
            if isinstance(built, MergeOutcome):
                return built
            candidate, tip, tree = built
            self._update(task.id, state=QueueState.TESTING, base_sha=main, tip_sha=tip, candidate_sha=candidate)
            self._line.publish(ticket, candidate)  # the branch behind this one is tested on top of it meanwhile
            red, seconds = self.suite.verdict(task.id, qa_files, candidate, tree)
            if red is not None:
                self._update(task.id, state=QueueState.RETURNED, returns=int(row.get("returns") or 0) + 1,
                             detail="red suite", test_seconds=seconds)
                return MergeOutcome(merged=False, reason="red", feedback=[
                    f"the full suite failed on your branch merged with the current {self.main_branch}; the task "
                    f"was rebuilt on the current {self.main_branch}: " + "; ".join(red[:5])], test_seconds=seconds)
            self._update(task.id, state=QueueState.TESTED, test_seconds=seconds)
        current_lease.check()  # fencing: only the attempt holding the lease moves main
        if not self._advance(candidate, main):
            log.info("merge_queue_main_moved", task_id=task.id, shared_remote=self.shared_remote)
            return None
        return self._merged(task, candidate, seconds, resumed=False)

    def _already_merged(self, task_id: str, row: dict[str, Any], main: str, tip: str) -> str | None:
        """The commit of ``main`` that already holds this task's merge, or None."""
        for done in (row.get("merged_sha"), row.get("candidate_sha")):
            if done and self.git.is_ancestor(done, main):
                return str(done)
        if self.git.is_ancestor(tip, main):
            return main
        return self.git.merged_task(main, task_id)  # e.g. merged by another node whose row is not ours

    # --- the main branch: local, or the shared remote's ------------------------------------
    def _main(self) -> str:
        """The main branch's tip to build on: with a shared remote the remote's (fetched, and the
        local main made to follow it; local commits the remote lacks are published first)."""
        if not self.shared_remote:
            main = self.git.rev(self.main_branch)
            if main is None:
                raise GitOperationError(f"there is no {self.main_branch} branch")
            return str(main)
        self.git.fetch()
        remote, local = self.git.remote_rev(self.main_branch), self.git.rev(self.main_branch)
        if local is not None and (remote is None or (remote != local and self.git.is_ancestor(remote, local))):
            current_lease.check()
            if self.git.push_lease(local, self.main_branch, remote):
                log.info("merge_queue_published_main", commit=local, was=remote)
                return str(local)
            self.git.fetch()
            remote = self.git.remote_rev(self.main_branch)
        if remote is None:
            raise GitOperationError(f"the remote has no {self.main_branch} branch and none could be pushed")
        if local != remote:
            if local is not None and not self.git.is_ancestor(local, remote):
                log.error("merge_queue_main_diverged", local=local, remote=remote, alert=True)
                raise GitOperationError(f"the local {self.main_branch} ({local[:12]}) and the remote's "
                                        f"({remote[:12]}) diverged; reconcile them by hand")
            self._follow(remote)
        return str(remote)

    def _follow(self, sha: str) -> None:
        """Fast-forward the local main (the main working tree, clean) to ``sha`` (already on the remote)."""
        with self._workspace_lock:
            self.git.fast_forward(sha, branch=self.main_branch)

    def _advance(self, candidate: str, base: str) -> bool:
        """Move main from ``base`` to ``candidate`` (a compare-and-swap); False when main moved meanwhile."""
        if self.shared_remote:
            if not self.git.push_lease(candidate, self.main_branch, base):
                return False
            self._follow(candidate)
            return True
        with self._workspace_lock:
            return self.git.fast_forward(candidate, branch=self.main_branch, expect=base)

    def publish(self, branch: str) -> None:
        """With a shared remote: push the task's ``branch`` as committed (lease checked first)."""
        if not self.shared_remote:
            return
        current_lease.check()  # fencing: only the attempt holding the lease publishes the task's branch
        self.git.publish_branch(branch)

    def _merged(self, task: Task, sha: str, seconds: float | None, *, resumed: bool) -> MergeOutcome:
        self._update(task.id, state=QueueState.MERGED, merged_sha=sha)
        log.info("merge_queue_merged", task_id=task.id, commit=sha, resumed=resumed)
        return MergeOutcome(merged=True, merge_commit=sha, test_seconds=seconds)

    @staticmethod
    def _merge_message(task: Task, branch: str) -> tuple[str, dict[str, str]]:
        """The merge commit's message and trailers (the queue's candidate, and a run ahead's, which may become
        main as it is)."""
        return f"Merge {branch}", {"Task-Id": task.id, "Agent": Role.TECH_LEAD.title}

    def _build(self, task: Task, branch: str, main: str, tip: str) -> tuple[str, str, str | None] | MergeOutcome:
        """(candidate, branch tip, the candidate's tree when it was made as objects only: not checked out yet)
        or the conflict outcome; otherwise the worktree is left at the candidate."""
        message, trailers = self._merge_message(task, branch)
        if self._integration() != "rebase" and (
                made := self.git.merge_commit(main, tip, message=message, trailers=trailers)) is not None:
            return made.commit, tip, made.tree
        cmd = self.git.ensure_worktree(self.path, main)
        try:
            if self._integration() == "rebase":
                rebased = self.git.rebase_detached(cmd, main, tip)
                if rebased != tip:
                    current_lease.check()
                    self.git.move_branch(branch, rebased, tip)
                    log.info("merge_queue_rebased", task_id=task.id, branch=branch, old=tip, new=rebased)
                    tip = rebased
                    self.publish(branch)
            candidate = self.git.merge_detached(cmd, main, tip, message=message, trailers=trailers)
        except MergeConflictError as e:
            row = self.row(task.id) or {}
            self._update(task.id, state=QueueState.RETURNED, returns=int(row.get("returns") or 0) + 1,
                         detail=f"conflict: {', '.join(e.conflicts)}")
            log.warning("merge_queue_conflict", task_id=task.id, branch=branch, conflicts=e.conflicts)
            return MergeOutcome(merged=False, reason="conflict", feedback=[
                f"your branch conflicts with the current {self.main_branch} in {', '.join(e.conflicts)}; the "
                f"task was rebuilt on the current {self.main_branch}: write the change again against it. "
                f"Conflict hunks:\n{e.hunks}"])
        return candidate, tip, None

    def rework(self, task: Task, branch: str) -> str:
        """Rebuild ``branch`` as the current main plus this task's QA commits; the new tip.

        What a conflict or a red suite leaves the Developer: the tests, on today's main.
        """
        with self._lock:  # the queue's worktree is the queue's: never two users at once
            main = self._main()
            tip = self.git.rev(branch)
            if tip is None:
                raise TaskFailedError(f"branch {branch} is gone; nothing to rebuild")
            qa = [r.sha for r in reversed(self.git.commit_records(200, branch=branch, first_parent=True))
                  if r.agent == Role.QA.value and r.trailers.get("Task-Id") == task.id
                  and r.trailers.get("Agent") == Role.QA.title and not self.git.is_ancestor(r.sha, main)]
            cmd = self.git.ensure_worktree(self.path, main)
            try:
                new = self.git.cherry_pick_detached(cmd, main, qa)
            except MergeConflictError as e:
                raise TaskFailedError(f"QA's tests of this task conflict with the current {self.main_branch} in "
                                      f"{', '.join(e.conflicts)}; branch {branch} kept as it was") from e
            current_lease.check()
            self.git.move_branch(branch, new, tip)
            self.git.reset_worktree(cmd, main)
            log.info("merge_queue_reworked", task_id=task.id, branch=branch, old=tip, new=new, qa_commits=len(qa))
        self.publish(branch)
        return new

    # --- early conflict detection ---------------------------------------------------------
    def catch_up(self, task: Task, branch: str, writes: dict[str, str]) -> CatchUp | None:
        """Before an attempt: when main moved, since ``branch``'s base, in files the task touched (its
        commits, or ``writes``: path -> text the attempt is about to write), bring the branch up to
        date (rebase or merge main into it, ``git.integration``) and merge the attempt's files onto
        main's versions. None when nothing had to be done; conflicts are in the result (the hunks go
        to the Developer, as for the queue)."""
        if self._behind(branch, writes) is None:  # read-only: most attempts never wait for the queue
            return None
        with self._lock:
            if (behind := self._behind(branch, writes)) is None:
                return None
            main, tip, base, moved, overlap = behind
            caught = CatchUp(files=sorted(overlap))
            hunks = []
            for path in sorted(set(writes) & moved):
                text, clean = self.git.merge_texts(self.git.file_at(base, path) or "", writes[path],
                                                   self.git.file_at(main, path) or "",
                                                   labels=("your change", "branch base", self.main_branch))
                if clean:
                    caught.merged[path] = text
                else:
                    caught.conflicts.append(path)
                    hunks.append(f"--- {path} ---\n{text}")
            caught.hunks = "\n".join(hunks)[:6000]
            cmd = self.git.ensure_worktree(self.path, main)
            try:
                if self._integration() == "rebase":
                    new = self.git.rebase_detached(cmd, main, tip)
                else:
                    new = self.git.merge_detached(cmd, tip, main, message=f"Merge {self.main_branch} into {branch}",
                                                  trailers={"Agent": Role.TECH_LEAD.title})
            except MergeConflictError as e:
                raise TaskFailedError(f"this task's commits conflict with the current {self.main_branch} in "
                                      f"{', '.join(e.conflicts)}; branch {branch} kept as it was") from e
            current_lease.check()
            self.git.move_branch(branch, new, tip)
            self.git.reset_worktree(cmd, main)
            log.info("merge_queue_caught_up", task_id=task.id, branch=branch, old=tip, new=new, files=caught.files,
                     conflicts=caught.conflicts)
        self.publish(branch)
        return caught

    def _behind(self, branch: str, writes: dict[str, str]) -> tuple[str, str, str, set[str], set[str]] | None:
        """(main, tip, base, files main changed since base, those the task touches) or None when
        ``branch`` is up to date or main's changes miss the task's files."""
        main = self._main()
        tip = self.git.rev(branch)
        if tip is None or self.git.is_ancestor(main, tip):
            return None
        base = self.git.merge_base(tip, main)
        if base is None:
            return None
        moved = self.git.changed_files(base, main)
        overlap = moved & (self.git.changed_files(base, tip) | set(writes))
        return (main, tip, base, moved, overlap) if overlap else None

    # --- documents ----------------------------------------------------------------------
    def write_document(self, path: str, content: str, agent: Role, message: str,
                       trailers: dict[str, str] | None = None) -> str:
        """Commit an analysis document onto main through the queue; the commit (main's tip after).

        Built on top of the current main without a working tree, tested (full suite) unless it is
        plain text, and main moved to it by the same compare-and-swap as a merge.
        """
        rel = self._fs.check_writable(path) if self._fs is not None else normalize(path).as_posix()
        if self._fs is not None and len(content.encode("utf-8")) > self._fs.max_file_bytes:
            raise WorkspaceError(f"{rel} would be over the {self._fs.max_file_bytes}-byte limit")

        def step() -> str | None:
            main = self._main()
            if self.git.file_at(main, rel) == content:
                return main  # already there (written before a crash): nothing to commit
            sha = self.git.commit_onto(main, {rel: content}, message, agent=agent, trailers=trailers)
            if not rel.endswith(TEXT_SUFFIXES):
                self.git.ensure_worktree(self.path, sha)
                red, _ = self.suite.test((trailers or {}).get("Task-Id", "document"), set())
                if red is not None:
                    raise TaskFailedError(f"the full suite fails with {rel} on {self.main_branch}; not "
                                          "committed: " + "; ".join(red[:3]))
            current_lease.check()  # fencing: a reclaimed attempt commits no document
            if self._advance(sha, main):
                log.info("merge_queue_document", path=rel, commit=sha)
                return sha
            log.info("merge_queue_main_moved", path=rel, shared_remote=self.shared_remote)
            return None

        with self._lock:
            return self._until_main_holds(step, rel)

    def _until_main_holds(self, step: Callable[[], T | None], what: str) -> T:
        """``step`` (build on main, test, move main by a compare-and-swap) until main takes its result; None
        from it: main moved meanwhile. Locally main moves only through this queue, so a few immediate tries;
        with a shared remote other nodes move it, so tries are spaced by a jittered, growing wait (the
        lease renewed, an ended attempt stopping it), and after the last the task waits, not counted."""
        tries = SHARED_TRIES if self.shared_remote else MAX_REBUILDS
        first, cap = self.backoff

        def backing_off(state: tenacity.RetryCallState) -> None:
            log.info("merge_queue_backoff", what=what, tries=state.attempt_number,
                     seconds=round(state.upcoming_sleep, 3))

        def kept_moving(state: tenacity.RetryCallState) -> T:
            if self.shared_remote:
                raise MainBusy(f"the remote's {self.main_branch} kept moving while {what} was integrated "
                               f"({tries} tries, other nodes merging); the task waits and tries again")
            raise TaskFailedError(f"main kept moving while {what} was tested; try again")

        retrying: tenacity.Retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(tries),
            wait=tenacity.wait_random_exponential(multiplier=first, max=cap) if self.shared_remote
            else tenacity.wait_none(),
            retry=tenacity.retry_if_result(lambda result: result is None),
            sleep=current_lease.pause,
            before_sleep=backing_off if self.shared_remote else None,
            retry_error_callback=kept_moving)
        return cast(T, retrying(step))  # never None: a None is tried again, and after the last, kept_moving raises
