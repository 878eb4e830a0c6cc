"""ReviewRuns: the merge candidate of a change tested while the Tech Lead reviews it (``git.test_in_review``).

A Developer stage holds its worker for two model answers, the code and its review; once the attempt's
tests pass, the review is still most of an answer away. Meanwhile the full suite runs on the candidate
the merge queue will most likely build for the change: on main, with the changes whose reviews were
asked before it (:class:`~ai_agents.orchestrator.review_line.ReviewLine`: the order they are likely to
be approved and merged in), in a worktree for runs ahead (:class:`SuiteRuns`), at a lower CPU priority.

A green run keeps the candidate's tree: if the change is approved, the queue's candidate with exactly
that tree is not tested again (the merge costs no test time). Any other candidate is tested as usual,
so what a run here proves never outlives the tree. A conflict, a red run or an error here proves
nothing and is not the attempt's failure. A run starts only when it is likely to end before the
review comes (:meth:`ReviewRuns.in_time`), and is stopped when the review comes first.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import structlog

from ai_agents import attempt as current_lease
from ai_agents.domain import Role, Task
from ai_agents.errors import AgentsError, LeaseLost, TestRunStopped
from ai_agents.git import GitManager
from ai_agents.orchestrator.review_line import ReviewLine
from ai_agents.orchestrator.suite_runs import SuiteRuns

log = structlog.get_logger("ai_agents.merge_queue")


class ReviewRuns:
    """See the module docstring. ``integration``: ``git.integration``, read live (rebase rewrites the branch
    first: nothing to build ahead)."""

    def __init__(self, *, git: GitManager, suite: SuiteRuns, main_branch: str, integration: Callable[[], str]):
        self.git = git
        self.suite = suite
        self.main_branch = main_branch
        self._integration = integration
        self._line = ReviewLine()

    def join(self, task_id: str) -> None:
        """``task_id``'s change is sent for review: it takes its place in the line of changes whose
        candidates are tested while they are reviewed."""
        if self._integration() == "merge":
            self._line.join(task_id)

    def withdraw(self, task_id: str) -> None:
        """``task_id``'s change will not be merged as it was reviewed (rejected, sent back, or the attempt
        failed): the changes reviewed after it are not built on it."""
        self._line.withdraw(task_id)

    def in_time(self, review_due: float | None) -> bool:
        """Whether a full run is likely to end before a review due in ``review_due`` seconds (None: not known):
        a run the review comes before is stopped, and where model answers are quick and the CPU is short it
        would only take the CPU from the runs that count."""
        suite = self.suite.pace.seconds
        return review_due is None or suite is None or review_due > suite

    def test(self, task: Task, change: str, qa_files: set[str], waiting: Callable[[], bool]) -> None:
        """Test ``task``'s candidate while its review is to come (``waiting()``): ``change`` is its branch with
        the attempt's change, as a commit object no ref points to (GitManager.snapshot). The candidates of
        the changes before it in the line are waited for while ``waiting()``; the run is stopped once it is
        false (the stage does not wait for it, and the queue tests as usual)."""
        if self._integration() != "merge":
            return
        slot: Path | None = None
        green = False  # else it leaves the line: no change after it waits for it or is built on it
        try:
            main, main_tree = self.git.commit_and_tree(self.main_branch)
            if main is None or main_tree is None:
                return
            if (base := self._line.base(task.id, main, main_tree, waiting)) is None or not waiting():
                return  # the review came first
            made = self.git.merge_commit(base, change, message=f"Merge {task.id} (under review)",
                                         trailers={"Task-Id": task.id, "Agent": Role.TECH_LEAD.title})
            if made is None:  # a conflict: the queue reports it, with its hunks, if the change is approved
                return
            self._line.fill(task.id, made.commit, made.tree)  # the next change is built on it meanwhile
            if self.suite.green(made.tree, qa_files) is not None:
                green = True
                return
            if not waiting():
                return
            slot = self.suite.take_slot()
            self.git.ensure_worktree(slot, made.commit)
            # Stopped when the review comes first: the Developer's stage never waits on it (the queue tests then).
            red, seconds = self.suite.test(task.id, qa_files, root=slot, runs=1, stop=lambda: not waiting())
            self.suite.runner_at(slot).warm(settle=0.0)
            log.info("merge_queue_tested_while_reviewed", task_id=task.id, base=base, candidate=made.commit,
                     green=red is None, seconds=seconds, worktree=slot.name)
            if red is None:
                current_lease.check()  # fencing: only the attempt holding the lease vouches for a tree
                self.suite.vouch(made.tree, qa_files, seconds)
                green = True
        except TestRunStopped:
            log.info("merge_queue_review_test_stopped", task_id=task.id, reason="the review came first")
        except LeaseLost:
            raise
        except AgentsError as e:  # only the time it would have saved is lost
            log.warning("merge_queue_review_test_failed", task_id=task.id, error=str(e)[:300])
            if slot is not None:
                self.suite.discard(slot)
        finally:
            if not green:
                self._line.withdraw(task.id)
            if slot is not None:
                self.suite.give_back(slot)
