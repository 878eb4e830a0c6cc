"""CodeFlow: the specification's write_code_tdd, in three stages a restart can resume.

tests   (QA)        tests written first on the task branch; they must fail; committed as QA.
code    (Developer) code written until the tests pass (3 attempts, then a different approach),
                    reviewed by the Tech Lead, committed as Developer.
merge   (Tech Lead) through the merge queue (the full suite on the candidate), or back to code.
release (Developer) push and deploy, each behind an approval when config.yaml asks for one.

The stages and their payloads are typed in :mod:`ai_agents.orchestrator.stages`.
"""

from __future__ import annotations

import contextvars
import json
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import structlog

from ai_agents import attempt as current_lease
from ai_agents.agents.coder import DeveloperAgent, QAAgent
from ai_agents.agents.models import CodeChange, CommitMessage, Review, TestSuite
from ai_agents.agents.reviewer import ReviewerAgent
from ai_agents.deployment import DeploymentFailedError
from ai_agents.deps.gate import APPROVAL_ACTION, DependencyGate
from ai_agents.deps.steps import AwaitingDependency, DependencySteps
from ai_agents.domain import AttemptFailure, Role, Task, slugify
from ai_agents.errors import AgentsError, TaskFailedError, TestRunError, WorkspaceError
from ai_agents.file_system.paths import normalize
from ai_agents.orchestrator.branch_cleanup import TASK_BRANCHES, MergedBranches
from ai_agents.orchestrator.coding_tools import ToolStages, review_diff
from ai_agents.orchestrator.flows import FlowResult
from ai_agents.orchestrator.merge_queue import MergeQueue
from ai_agents.orchestrator.quality import quality_report
from ai_agents.orchestrator.review_line import Pace
from ai_agents.orchestrator.stages import (
    STAGE_ROLES,
    CodePayload,
    ReleaseAction,
    ReleasePayload,
    Stage,
    StagePayload,
    TestsHandoff,
    stage_of,
)
from ai_agents.orchestrator.workspace import Tested, Workspace
from ai_agents.orchestrator.worktrees import Worktrees
from ai_agents.testing.selection import affected_tests
from ai_agents.testing.suites import expected_ids, jest_suite_problems
from ai_agents.testing.tamper_check import tampering_reasons
from ai_agents.testing.verdict import TAMPERING

log = structlog.get_logger("ai_agents.pipeline")
T = TypeVar("T")

# A path that can go in a commit trailer as it is: no spaces, newlines or colons to forge another trailer.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9_./-]+")


@dataclass(frozen=True)
class Attempted:
    """One attempt's outcome: failures (None when green), the Tech Lead's review when green, the commit
    message being asked meanwhile, and the run that passed (reused at commit when the tree is the same)."""

    failures: list[AttemptFailure] | None
    review: Review | None = None
    message: Future[CommitMessage] | None = None
    tested: Tested | None = None


def ask_ahead(ask: Callable[[], T]) -> Future[T]:
    """Run the model call ``ask`` in its own thread, with this thread's context (the attempt's lease, the log
    fields), so that it overlaps a test run or another agent's call. Its answer is taken with no lock held;
    an answer nobody takes (the attempt was sent back) is a wasted call, never a side effect."""
    future: Future[T] = Future()
    context = contextvars.copy_context()

    def run() -> None:
        try:
            future.set_result(context.run(ask))
        except BaseException as e:  # handed to whoever takes the answer
            future.set_exception(e)

    threading.Thread(target=run, name="ask-ahead", daemon=True).start()
    return future


def given(message: CommitMessage | None) -> Future[CommitMessage] | None:
    """A commit message the model gave with its answer, as an answer already taken (None: none given)."""
    if message is None:
        return None
    future: Future[CommitMessage] = Future()
    future.set_result(message)
    return future


def suite_problems(suite: TestSuite, tests_dir: str, framework: str = "pytest") -> list[str]:
    """Why QA's paths are unusable (empty if they are fine); judged as the file system will resolve them."""
    if framework == "jest":
        return jest_suite_problems(suite.test_path, suite.module_path, suite.test_code, tests_dir)
    problems, normal = [], {}
    for field in ("test_path", "module_path"):
        try:
            normal[field] = normalize(getattr(suite, field)).as_posix()
        except WorkspaceError as e:
            problems.append(f"{field}: {e}")
    test_path, module_path = normal.get("test_path"), normal.get("module_path")
    if test_path is not None:
        name = test_path.rsplit("/", 1)[-1]
        # Exactly the normal form: "tests/../x.py" is x.py, outside tests/; the path QA writes,
        # commits and the Developer may not touch is then the one checked here.
        if (test_path != suite.test_path.strip() or not test_path.startswith(f"{tests_dir}/")
                or not (name.startswith("test_") and name.endswith(".py"))):
            problems.append(f"test_path must be {tests_dir}/test_<name>.py, not {suite.test_path!r}")
    if module_path is not None and (not module_path.endswith(".py") or module_path.startswith(f"{tests_dir}/")):
        problems.append(f"module_path must be a .py file outside {tests_dir}/, not {suite.module_path!r}")
    return problems


CONFLICT_WITH_MAIN = "conflict with main"


CONFLICT_BRIEF = 3000  # a conflict's hunks reach the next attempt whole (up to this); a test's failure in brief


class CodeFlow:
    def __init__(self, ws: Workspace, *, qa: QAAgent, developer: DeveloperAgent, tech_lead: ReviewerAgent,
                 approval_status: Callable[[str, str], str | None], merge_queue: MergeQueue,
                 worktrees: Worktrees | None = None, deps: DependencyGate | None = None,
                 branches: MergedBranches | None = None, review_pace: Pace | None = None):
        self.ws = ws
        self.branches = branches  # None: merged branches are kept
        self.queue = merge_queue
        self.worktrees = worktrees  # None: this flow already works in one task's worktree
        self.gate = deps
        self.deps = DependencySteps(deps, ws, approval_status, developer)
        self.qa = qa
        self.dev = developer
        self.tech_lead = tech_lead
        self.approval_status = approval_status
        self.tool_stages = ToolStages(ws, qa=qa, developer=developer, llm=developer.llm, tech_lead=tech_lead,
                                      deps=self.deps)
        # How long the Tech Lead's review takes to come these days: one for the daemon (each task's flow shares it).
        self.review_pace = review_pace or Pace()

    @property
    def with_tools(self) -> bool:
        """QA and the Developer work through tools (``agents.tools.enabled``), read live."""
        return self.ws.live.current.agents.tools.enabled

    def role_for(self, task: Task) -> Role:
        try:
            return STAGE_ROLES[stage_of(task.payload)]
        except TaskFailedError:
            return Role.QA  # routed; run() then fails the task with the reason

    def run(self, task: Task) -> FlowResult:
        stage = stage_of(task.payload)  # the daemon's record; an unknown stage fails the task here
        branch = StagePayload.load(task.payload).branch or f"{TASK_BRANCHES}{task.id}-{slugify(task.title)}"
        if stage == Stage.RELEASE:
            return self.release(task, branch)
        if self.worktrees is None:
            return self._warm_stage(self, stage, task, branch)
        # The QA, Developer and merge stages work in the task's own worktree, with its own lock and test runs.
        ws = self.worktrees.acquire(task.id, branch)
        flow = CodeFlow(ws, qa=self.qa, developer=self.dev, tech_lead=self.tech_lead,
                        approval_status=self.approval_status, merge_queue=self.queue, deps=self.gate,
                        review_pace=self.review_pace)
        try:
            result = self._warm_stage(flow, stage, task, branch)
        except AgentsError:
            # A retry makes the worktree again from the branch, where everything committed lives.
            self.worktrees.release(task.id)
            raise
        if result.next_stage == Stage.RELEASE or self.ws.live.current.git.shared_remote:
            # Merged: the worktree's work is on main. With a shared remote the stage's commits are
            # published, and the next stage may run on another node: a worktree kept here would hold
            # one of this node's slots for a task it may never see again.
            self.worktrees.release(task.id)
        return result

    def _warm_stage(self, flow: CodeFlow, stage: Stage, task: Task, branch: str) -> FlowResult:
        """QA's and the Developer's stages start with their first test run's process started ahead (its
        imports done while the model is asked: TestRunner.warm); what the stage did not use ends with it."""
        if stage == Stage.MERGE:
            return self._stage(flow, stage, task, branch)
        flow.ws.runner.warm()
        try:
            return self._stage(flow, stage, task, branch)
        finally:
            flow.ws.runner.cool()

    def _stage(self, flow: CodeFlow, stage: Stage, task: Task, branch: str) -> FlowResult:
        if stage == Stage.TESTS:
            return self.tests_published(branch, flow.write_tests(task, branch))
        return flow.write_code(task, branch) if stage == Stage.CODE else flow.merge(task, branch)

    def tests_published(self, branch: str, result: FlowResult) -> FlowResult:
        """QA's commit pushed before the hand-off (``git.shared_remote``): any node can take the code stage."""
        self.queue.publish(branch)
        return result

    # --- stage 1: QA writes failing tests --------------------------------------------
    def write_tests(self, task: Task, branch: str) -> FlowResult:
        done = self.ws.task_commits(branch, task.id)
        if "QA" in done and (resumed := self._committed_suite(branch, done["QA"])):
            # The daemon died after QA's commit but before the hand-off: go on from that commit.
            # Asking QA again would put a second, different QA commit for this task on main.
            self.qa.record("tests_resumed", task, branch=branch, commit=done["QA"])
            return FlowResult(next_stage=Stage.CODE, result=resumed.result())
        if self.with_tools:
            return FlowResult(next_stage=Stage.CODE, result=self.tool_stages.write_tests(task, branch).result())
        cfg = self.ws.live.current
        feedback: list[str] = []
        for attempt in range(1, cfg.agents.max_fix_attempts + 1):
            framework = self.ws.runner.detect_framework()
            self.ws.runner.ensure_runnable(framework)  # before asking QA: jest may not be installed
            if attempt > 1:
                self.ws.runner.warm()  # the run of the tests QA is about to write again
            suite = self.qa.write_tests(task, self.ws.summary(), feedback, framework=framework)
            problems = suite_problems(suite, cfg.testing.tests_dir, framework)
            if problems:
                feedback += problems
                self.qa.record("tests_sent_back", task, attempt=attempt, reasons=problems)
                continue
            # The message QA gave with its tests, or one asked while the tests run (the diff is read from
            # git objects first).
            message_ahead = given(suite.commit_message) or ask_ahead(partial(
                self.qa.commit_message, task, self._diff(branch, {suite.test_path: suite.test_code})))
            with self.ws.on_branch(branch, create=True):
                try:
                    self.ws.fs.write_file(suite.test_path, suite.test_code)
                except WorkspaceError as e:
                    feedback.append(str(e))
                    self.qa.record("tests_sent_back", task, attempt=attempt, reasons=[str(e)])
                    continue
                result = self.ws.runner.run_specific_test(suite.test_path)
                self.ws.check_limits()  # a run that filled the workspace fails the task; the clean slate follows
                current_lease.progress()
                self.qa.record("tests_run_before_code", task, outcome=result.outcome, failed=result.failed_count,
                               errors=result.errors, passed=result.passed_count)
                if self.ws.changed_by_tests({suite.test_path: suite.test_code}):
                    why = f"{suite.test_path} changed while the tests ran (rewritten, deleted or made a symlink)"
                    feedback.append(why)
                    self.qa.record("tests_sent_back", task, attempt=attempt, reasons=[why])
                    continue
                if result.outcome == "could_not_run":
                    raise TestRunError(f"the test framework could not run: {result.output_tail[-500:]}")
                if result.outcome != "failed":
                    why = {"passed": "the tests pass on empty code: they test nothing the task asks for",
                           "no_tests": "no tests were collected from the file",
                           "timeout": "the tests hang"}.get(result.outcome, f"outcome {result.outcome}")
                    feedback.append(why)
                    self.qa.record("tests_sent_back", task, attempt=attempt, reasons=[why])
                    continue
            # The message is taken with no lock held; then the tested file is written again (the clean
            # slate removed it) and committed under the lock.
            message = message_ahead.result().render({})
            with self.ws.on_branch(branch):
                self.ws.fs.write_file(suite.test_path, suite.test_code)
                trailers = {"Task-Id": task.id, "Agent": "QA",
                            "Tests": f"{result.test_count} written, failing before code"}
                # What a restart resumes from (see _committed_suite); only plain paths go in a trailer.
                trailers |= {k: v for k, v in (("Test-File", suite.test_path), ("Module", suite.module_path))
                             if _PLAIN_PATH.fullmatch(v)}
                # The model's text goes in as free text (made inert); the daemon's trailers are appended last.
                current_lease.check()  # fencing: only the attempt holding the lease commits
                sha = self.ws.git.commit(message, agent=Role.QA, files=[suite.test_path], trailers=trailers)
            self.qa.record("tests_committed", task, branch=branch, commit=sha, test_path=suite.test_path)
            return FlowResult(next_stage=Stage.CODE, result=TestsHandoff(
                branch=branch, test_path=suite.test_path, module_path=suite.module_path,
                requirements=suite.requirements, constraints=suite.constraints, tests_commit=sha).result())
        raise TaskFailedError("QA could not write tests that fail before the code exists: " + "; ".join(feedback[-5:]))

    def _committed_suite(self, branch: str, sha: str) -> TestsHandoff | None:
        """The test and module paths QA's commit ``sha`` recorded in its trailers, or None.

        Requirements and constraints are not in the commit: after such a restart the Developer
        works from the tests alone (they are the specification).
        """
        entry = next((r for r in self.ws.git.commit_records(50, branch=branch, first_parent=True)
                      if r.sha == sha), None)
        if entry is None or entry.agent != Role.QA.value:
            return None
        trailers = entry.trailers  # the daemon's own block only, never the model's text above it
        if not (trailers.get("Test-File") and trailers.get("Module")):
            return None  # a commit without them (older versions): QA writes the tests again
        return TestsHandoff(branch=branch, test_path=trailers["Test-File"], module_path=trailers["Module"],
                            tests_commit=sha)

    # --- stage 2: the Developer makes them pass ------------------------------------------
    def write_code(self, task: Task, branch: str) -> FlowResult:
        suite = CodePayload.load(task.payload)
        done = self.ws.task_commits(branch, task.id)
        if "Developer" in done:  # committed before a restart (or by the previous version): on to the queue
            return FlowResult(next_stage=Stage.MERGE, result={"code_commit": done["Developer"]})
        with self.ws.on_branch(branch):
            tests = self.ws.fs.read_file(suite.test_path)
            context = "" if self.with_tools else self._code_context(suite.module_path)
        cfg = self.ws.live.current.agents
        # The agents' prompts read QA's hand-off as the plain payload they always did.
        brief = suite.model_dump(mode="json", exclude={"stage", "pending_change"})
        # Sent back by the merge queue: why (the conflict hunks or the failures on the current main).
        rejected: list[str] = list(suite.queue_feedback)
        pending = suite.pending_change  # the change that waited for a dependency approval
        for approach in range(cfg.max_approaches):
            if approach:
                self.dev.record("approach_changed", task, approach=approach + 1, reasons=rejected[-3:])
                self.ws.runner.warm()
            if pending is not None:
                change, pending = pending, None
            else:
                change = (self.tool_stages.code_change(task, branch, suite, feedback=rejected) if self.with_tools
                          else self.dev.write_code(task, brief, tests, context, approach=approach, rejected=rejected))
            for attempt in range(1, cfg.max_fix_attempts + 1):
                change, early = self._catch_up(task, branch, change)
                approved = False
                try:
                    attempted = early or self._attempt(task, branch, change, suite, approach + 1, attempt)
                    failures, review = attempted.failures, attempted.review
                    approved = failures is None and review is not None and review.approve
                except AwaitingDependency as wait:
                    return FlowResult(next_stage=Stage.CODE, awaiting_approval=APPROVAL_ACTION, result={
                        **wait.details, **suite.result("attempt_test_seconds"),
                        "pending_change": change.model_dump(mode="json")})
                finally:
                    if not approved:  # its merge candidate, if one was tested while it was reviewed, is not built on
                        self.queue.in_review.withdraw(task.id)
                if approved:
                    return self._commit(task, branch, change, suite, attempted.message, attempted.tested)
                # The Tech Lead reviewed while the tests ran: a rejection goes back with the failures.
                notes = (review.issues or review.reasons) if review is not None and not review.approve else []
                reasons = ([f.reason() for f in failures][:3] + [f"Tech Lead: {n}" for n in notes[:2]] if failures
                           else (review.issues + review.reasons if review else [])[:3])
                rejected += reasons or ["the attempt failed"]
                if attempt < cfg.max_fix_attempts:
                    self.ws.runner.warm()  # the next attempt's run, started while the fix is asked for
                if attempt < cfg.max_fix_attempts and self.with_tools:
                    change = self.tool_stages.code_change(task, branch, suite, feedback=rejected, previous=change)
                elif attempt < cfg.max_fix_attempts:
                    change = self.dev.fix_code(task, brief, tests, change, failures=failures or [], review=notes)
        raise TaskFailedError(f"tests still failing after {cfg.max_approaches} approaches of "
                              f"{cfg.max_fix_attempts} attempts; branch {branch} kept unmerged. Last problems: "
                              + "; ".join(rejected[-5:]))

    def _catch_up(self, task: Task, branch: str,
                  change: CodeChange) -> tuple[CodeChange, Attempted | None]:
        """Early conflict detection (``git.catch_up``, see MergeQueue.catch_up): (the change, its files
        merged onto main's where main moved; the failed attempt's result when they conflict, else None)."""
        if not self.ws.live.current.git.catch_up:
            return change, None
        caught = self.queue.catch_up(task, branch, Workspace.proposed(change))
        if caught is None:
            return change, None
        with self.ws.lock:
            self.ws.git.sync_to_head()  # the branch was brought up to date from outside this working tree
        self.dev.record("caught_up_with_main", task, branch=branch, files=caught.files, conflicts=caught.conflicts,
                        merged=sorted(caught.merged))
        if caught.conflicts:
            return change, Attempted([AttemptFailure(CONFLICT_WITH_MAIN, caught.feedback(self.ws.main_branch),
                                                     brief=CONFLICT_BRIEF)])
        files = []
        for f in change.files:
            try:
                path = normalize(f.path).as_posix()
            except WorkspaceError:
                path = ""
            files.append(f.model_copy(update={"content": caught.merged[path]}) if path in caught.merged else f)
        return change.model_copy(update={"files": files}), None

    def _attempt(self, task: Task, branch: str, change: CodeChange, suite: CodePayload, approach: int,
                 attempt: int) -> Attempted:
        """Apply, test and review one attempt: the Tech Lead reviews the written code while its tests run."""
        if static := self._static_tampering(task, change, approach, attempt):
            return Attempted(static)
        if problems := self.deps.prepare(task, change):  # raises AwaitingDependency for a human's approval
            return Attempted(problems)
        # Asked now, on the files as proposed, answered while they are written and tested (taken with no lock
        # held): the review never waits for the tests, and the tests never wait for the review. What counts is
        # a review of exactly what was written: if a write is refused, it is asked again on that.
        proposed = Workspace.proposed(change)
        asked = time.monotonic()
        early = ask_ahead(partial(self._review, task, proposed, suite)) if proposed else None
        if self.ws.live.current.git.test_in_review:
            self.queue.in_review.join(task.id)  # its place in the line of changes tested while they are reviewed
        with self.ws.on_branch(branch):
            expected = self._expected_tests(suite)
            written, refused = self.ws.apply(change, suite.qa_files())
            manifest = self.deps.write_files(task)
            files = self.ws.contents(change, written)
            if early is not None and files == proposed:
                review_ahead = early
            else:
                if early is not None:
                    self.tech_lead.record("review_asked_again", task, reason="written files differ from those "
                                          "proposed (a write was refused): the first review is not used")
                review_ahead, asked = ask_ahead(partial(self._review, task, files, suite)), time.monotonic()
            # Tool mode: the Developer's finish gate may have run these tests on byte for byte this tree.
            finished = self.tool_stages.finish_tested(task.id) if self.with_tools else None
            result, tested = self.ws.verdict(written + manifest, self._attempt_tests(suite, written), expected,
                                             reuse=finished)
            if finished is not None and tested is finished:
                self.dev.record("attempt_tests_reused", task, approach=approach, attempt=attempt,
                                passed=result.passed_count)
            else:
                suite.attempt_test_seconds += result.duration
                self.ws.check_limits()
                current_lease.progress()
            changed = self.ws.changed_by_tests(files)
            # The review still to come: the merge queue tests what this change would make main meanwhile.
            pace = self.review_pace.seconds
            snapshot = (self._snapshot(task, written + manifest)
                        if result.passed and not changed and not refused and not review_ahead.done()
                        and self.ws.live.current.git.test_in_review
                        and self.queue.in_review.in_time(None if pace is None else pace - (time.monotonic() - asked))
                        else None)
        self.dev.record("code_tested", task, approach=approach, attempt=attempt, outcome=result.outcome,
                        passed=result.passed_count, failed=result.failed_count, refused=refused,
                        test_seconds=round(result.duration, 3))
        if result.tampering:
            self.dev.record(TAMPERING, task, source="verdict", approach=approach, attempt=attempt,
                            reasons=result.tampering[:5])
        if snapshot is not None:  # no lock held
            self.queue.in_review.test(task, snapshot, suite.qa_files(), lambda: not review_ahead.done())
        else:
            self.queue.in_review.withdraw(task.id)  # nothing to build on: no change after it waits for it
        review = review_ahead.result()  # no lock held
        if changed:
            return Attempted([AttemptFailure("files changed by the tests",
                                             f"{', '.join(changed)} changed while the tests ran")], review)
        if not result.passed:
            failures = [AttemptFailure(f.test_name, f.error_message, f.traceback) for f in result.failures]
            if not failures:
                failures = [AttemptFailure(result.outcome, result.output_tail[-1500:])]
            return Attempted(failures + [AttemptFailure("write refused", r) for r in refused], review)
        # The message the Developer gave with its code, or one asked now (taken, with no lock held, if approved).
        message = given(change.commit_message) or ask_ahead(partial(
            self.dev.commit_message, task, self._diff(branch, Workspace.proposed(change))))
        return Attempted(None, review, message, tested)

    def _snapshot(self, task: Task, paths: list[str]) -> str | None:
        """The attempt's change as a commit object no ref points to (lock held), for the merge queue's run
        during the review; None when it cannot be made: only that run is lost."""
        try:
            return self.ws.git.snapshot(paths, agent=Role.DEVELOPER)
        except AgentsError as e:
            self.dev.record("snapshot_skipped", task, error=str(e)[:300])
            return None

    def _attempt_tests(self, suite: TestsHandoff, written: list[str]) -> list[str]:
        """QA's tests and the tests importing a module the attempt wrote (lock held); the full suite
        runs once per merge, in the merge queue."""
        tests_dir = self.ws.live.current.testing.tests_dir
        sources: dict[str, str] = {}
        for pattern in (f"{tests_dir}/**/test_*.py", f"{tests_dir}/**/*_test.py"):
            for path in self.ws.fs.find_files(pattern):
                try:
                    sources[str(path)] = self.ws.fs.read_file(path)
                except WorkspaceError:
                    continue
        return affected_tests(sources, written, always=sorted(suite.qa_files()))

    def _expected_tests(self, suite: TestsHandoff) -> list[str]:
        """QA's test ids, read by the daemon from the committed file (lock held, before the Developer's
        files are written): each must be reported run and passed for the attempt to pass."""
        expected: list[str] = []
        for path in sorted(suite.qa_files()):
            try:
                expected += expected_ids(path, self.ws.fs.read_file(path))
            except WorkspaceError:
                continue
        return expected

    def _static_tampering(self, task: Task, change: CodeChange, approach: int,
                          attempt: int) -> list[AttemptFailure] | None:
        """Refuse, before anything is written or run, Developer code that reaches for the test framework."""
        reasons = [r for f in change.files for r in tampering_reasons(f.path, f.content)][:8]
        if not reasons:
            return None
        log.warning(TAMPERING, alert=True, alert_name=TAMPERING, task_id=task.id, source="static check",
                    approach=approach, attempt=attempt, reasons=reasons,
                    message="the Developer's code reaches for the test framework; attempt failed")
        self.dev.record(TAMPERING, task, source="static check", approach=approach, attempt=attempt, reasons=reasons)
        return [AttemptFailure(TAMPERING, "refused before running, code under test may not touch "
                               "the test framework: " + "; ".join(reasons))]

    def _review(self, task: Task, files: dict[str, str], suite: CodePayload) -> Review:
        """The Tech Lead's review of the attempt's ``files`` (path -> the text written), with their measured
        quality (a private copy is checked: this runs while the tests run in the worktree)."""
        quality = quality_report(files, None)
        code = "\n".join(f"--- {p} ---\n{c[:15000]}" for p, c in files.items())
        if self.with_tools:  # the diff with surrounding lines, not whole files
            code = "Diff of the change:\n" + self.tool_stages.diff_for_review(task.id, files)[:40_000]
        prompt = (f"Review this code. Its tests ({suite.test_path}) run while you review it: it is committed only if"
                  f" they pass and you approve.\nTask: {task.title}\n"
                  f"Measured quality: {json.dumps(quality, default=str)[:4000]}\n\n{code}\n\n"
                  "Approve only correct, simple, readable code without obvious style problems. Give reasons;"
                  " list concrete issues if you reject it.")
        started = time.monotonic()
        review = self.tech_lead.ask(prompt, Review, task)
        self.review_pace.add(time.monotonic() - started)
        self.tech_lead.record("code_reviewed", task, approve=review.approve, score=review.score,
                              reasons=review.reasons[:5], style_issues=len(quality.get("style_issues", [])),
                              max_complexity=quality.get("max_complexity"))
        return review

    def _diff(self, branch: str, files: dict[str, str]) -> str:
        """``files`` (path -> new text) against ``branch``, read from git objects: no lock needed."""
        ref = branch if self.ws.git.branch_exists(branch) else self.ws.main_branch
        base = {p: old for p in files if (old := self.ws.git.file_at(ref, p)) is not None}
        return review_diff(base, files)

    def _commit(self, task: Task, branch: str, change: CodeChange, suite: CodePayload,
                message_ahead: Future[CommitMessage] | None, tested: Tested | None = None) -> FlowResult:
        # Taken before the lock is taken: no model call while a shared lock is held.
        message = (message_ahead.result() if message_ahead is not None
                   else self.dev.commit_message(task, self._diff(branch, Workspace.proposed(change)))).render({})
        with self.ws.on_branch(branch):
            expected = self._expected_tests(suite)
            written, _ = self.ws.apply(change, suite.qa_files())
            manifest = self.deps.write_files(task)
            # Byte for byte the tree the attempt's run passed: its verdict stands, the tests do not run again.
            result, kept = self.ws.verdict(written + manifest, self._attempt_tests(suite, written), expected,
                                           reuse=tested)
            if tested is not None and kept is tested:
                self.dev.record("commit_tests_reused", task, branch=branch, passed=result.passed_count)
            else:
                suite.attempt_test_seconds += result.duration
                self.ws.check_limits()
                current_lease.progress()
            if changed := self.ws.changed_by_tests(self.ws.contents(change, written)):
                # What would be committed is no longer what the Tech Lead reviewed.
                raise TaskFailedError(f"{', '.join(changed)} changed while the tests ran, after the review; "
                                      "nothing was committed")
            if not result.passed:
                why = f" ({TAMPERING}: {'; '.join(result.tampering[:3])})" if result.tampering else ""
                raise TaskFailedError(f"tests no longer pass at commit time: {result.outcome}{why}")
            written += manifest
            current_lease.check()  # fencing: only the attempt holding the lease commits
            sha = self.ws.git.commit(message, agent=Role.DEVELOPER, files=written, trailers={
                "Task-Id": task.id, "Agent": "Developer", "Tests": f"{result.passed_count} passed"})
        self.dev.record("code_committed", task, branch=branch, commit=sha, tests_passed=result.passed_count)
        self.queue.publish(branch)  # shared remote: the merge stage may run on another node
        suite.tests_passed, suite.code_commit = result.passed_count, sha
        return FlowResult(next_stage=Stage.MERGE,
                          result=suite.result("code_commit", "tests_passed", "attempt_test_seconds"))

    # --- stage 3: the Tech Lead merges through the queue -------------------------------------
    def merge(self, task: Task, branch: str) -> FlowResult:
        """Through the merge queue: main only ever moves to a tested merge commit (see merge_queue)."""
        suite = CodePayload.load(task.payload)
        code_sha = self.ws.task_commits(branch, task.id).get("Developer")
        if code_sha is None:  # the daemon's record, not the payload's word: nothing of the Developer to merge
            self.tech_lead.record("merge_without_code", task, branch=branch)
            return FlowResult(next_stage=Stage.CODE, result={"code_commit": None})
        self.queue.publish(branch)  # the Developer's commit, on the shared remote before anything else
        outcome = self.queue.merge(task, branch, suite.qa_files())
        if not outcome.merged:
            returns = suite.queue_returns + 1
            self.tech_lead.record("sent_back_by_merge_queue", task, branch=branch, reason=outcome.reason,
                                  returns=returns, feedback=[f[:500] for f in outcome.feedback])
            if returns > self.ws.live.current.orchestrator.max_task_attempts:
                raise TaskFailedError(f"the merge queue sent {branch} back {returns} times ({outcome.reason}); "
                                      "branch kept unmerged: " + "; ".join(outcome.feedback)[:1500])
            self.queue.rework(task, branch)
            with self.ws.lock:
                self.ws.git.sync_to_head()  # the branch was rebuilt from outside this working tree
            back = suite.model_copy(update={"queue_returns": returns, "queue_feedback": list(outcome.feedback)})
            return FlowResult(next_stage=Stage.CODE,
                              result=back.result("queue_returns", "queue_feedback", "attempt_test_seconds"))
        if outcome.merge_commit is None:
            raise TaskFailedError(f"the merge queue reported {branch} merged without naming its merge commit")
        attempt_seconds = round(suite.attempt_test_seconds, 3)
        self.tech_lead.record("branch_merged", task, branch=branch, into=self.ws.main_branch,
                              commit=outcome.merge_commit, queue_test_seconds=outcome.test_seconds,
                              attempt_test_seconds=attempt_seconds)
        merged = ReleasePayload(code_commit=code_sha, merge_commit=outcome.merge_commit,
                                tests_passed=suite.tests_passed, attempt_test_seconds=attempt_seconds,
                                queue_test_seconds=outcome.test_seconds)
        return FlowResult(next_stage=Stage.RELEASE, result={
            **merged.result("code_commit", "merge_commit", "tests_passed", "attempt_test_seconds",
                            "queue_test_seconds"), "queue_feedback": []})

    def _code_context(self, module_path: str) -> str:
        parts = []
        if self.ws.fs.exists(module_path):
            parts.append(f"--- {module_path} (current) ---\n{self.ws.fs.read_file(module_path)[:12000]}")
        parts.append(self.ws.summary()[:6000])
        return "\n".join(parts)

    # --- stage 4: push and deploy, behind approvals ----------------------------------------
    def release(self, task: Task, branch: str) -> FlowResult:
        cfg = self.ws.live.current
        payload = ReleasePayload.load(task.payload)
        merge_sha = payload.merge_commit
        result = payload.summary()
        # With a shared remote the merge queue already pushed main: there is nothing left to push.
        steps = [(ReleaseAction.PUSH, cfg.git.auto_push and not cfg.git.shared_remote),
                 (ReleaseAction.DEPLOY, cfg.deployment.enabled)]
        for action, wanted in steps:
            if not wanted or action in payload.released:
                continue
            if action in cfg.approvals.required_for:
                status = self.approval_status(task.id, action)
                if status is None or status == "pending":
                    return FlowResult(next_stage=Stage.RELEASE, awaiting_approval=action,
                                      result={**payload.result("released", "merge_commit"), "action": action})
                if status != "approved":
                    self.dev.record(f"{action}_rejected", task, decided=status)
                    result[action.value] = f"not done: {status}"
                    continue
            if action == ReleaseAction.PUSH:
                with self.ws.lock:
                    current_lease.check()
                    self.ws.git.push(self.ws.main_branch)
                result["push"] = "pushed"
                payload.released.append(action)
                self.dev.record("pushed", task, branch=self.ws.main_branch)
            else:
                try:
                    record = self.ws.deployer.deploy(merge_sha, task_id=task.id, guard=current_lease.check)
                except DeploymentFailedError as e:
                    self.dev.record("deploy_failed", task, commit=merge_sha, error=e.record.error,
                                    rolled_back_to=e.record.rolled_back_to)
                    raise TaskFailedError(f"deployment failed: {e.record.error}; "
                                          f"rolled back to {e.record.rolled_back_to or 'nothing'}") from e
                result["deploy"] = record.model_dump(mode="json")
                self.dev.record("deployed", task, status=record.status, commit=merge_sha)
        # The task's last step: its branch is on main and no stage reads it again.
        if self.branches is not None and (deleted := self.branches.retire(task.id, branch)):
            self.dev.record("branch_deleted", task, branches=deleted)
        return FlowResult(result=result)
