"""ToolStages: QA's and the Developer's stages of the code pipeline, done through the tool loop.

The pipeline (:mod:`ai_agents.orchestrator.pipeline`) calls this when ``agents.tools.enabled``.
Each loop works on a snapshot of the task branch, taken under the workspace lock; the lock is
held again only to run tests (the view's changes written through the file-system manager,
then discarded) and to commit, never while the model thinks. What is committed is checked
by the daemon's own test run on exactly its bytes (the Developer's ``finish`` run is the attempt's
verdict only when the tree is byte for byte the same), never by what the model said.
"""

from __future__ import annotations

import difflib
import json
import re
import threading
from collections.abc import Callable

import structlog

from ai_agents import attempt as current_lease
from ai_agents.agents.base import task_brief
from ai_agents.agents.coder import DeveloperAgent, QAAgent
from ai_agents.agents.models import CodeChange, CommitMessage, DependencyRequest, Review, SourceFile
from ai_agents.agents.prompts import tool_system_prompt
from ai_agents.agents.reviewer import ReviewerAgent
from ai_agents.agents.tools.loop import LimitGuard, LoopOutcome, ToolLoop, ToolModel
from ai_agents.agents.tools.registry import DependencyHook, TestHook, ToolRegistry, describe_result
from ai_agents.agents.tools.repo_map import RepoMap
from ai_agents.agents.tools.view import CodeView, WritePolicy
from ai_agents.deps.steps import DependencySteps
from ai_agents.domain import Role, Task
from ai_agents.errors import AttemptTurnsUsed, TaskFailedError, TestRunError, ToolError, WorkspaceError
from ai_agents.file_system.paths import normalize
from ai_agents.orchestrator.stages import CodePayload, TestsHandoff
from ai_agents.orchestrator.workspace import Tested, Workspace
from ai_agents.testing.jest_verdict import expected_jest_ids, is_jest_file
from ai_agents.testing.result import TestResult
from ai_agents.testing.selection import affected_tests
from ai_agents.testing.suites import expected_ids

log = structlog.get_logger("ai_agents.pipeline")

MAX_TESTS_IN_BRIEF = 20_000
_PLAIN_PATH = re.compile(r"[A-Za-z0-9_./-]+")
REVIEW_CONTEXT_LINES = 6
BASES_KEPT = 64


def fail_first_problem(result: TestResult) -> str | None:
    """Why QA's new tests do not prove anything yet (None when they do): at least one collected
    test must fail on an assertion or a missing name; a collection error alone does not count."""
    if result.outcome == "could_not_run":
        raise TestRunError(f"the test framework could not run: {result.output_tail[-500:]}")
    if result.outcome == "passed":
        return "the new tests pass on the current code: they must fail until the code exists"
    if result.outcome == "no_tests":
        return "no tests were collected from the new test files"
    if result.outcome == "timeout":
        return "the tests hang"
    if result.failed_count < 1:
        return ("the tests only fail to be collected (import or syntax errors), none ran and failed: import what "
                "does not exist yet inside the test functions so that each test fails on its own\n"
                + describe_result(result))
    return None


def is_new_test_file(path: str, framework: str) -> bool:
    """A file QA's tests go in: ``test_<name>.py`` (pytest) or ``<name>.test.js``/``.ts`` (jest)."""
    return is_jest_file(path) if framework == "jest" else path.rsplit("/", 1)[-1].startswith("test_")


def review_diff(base: dict[str, str], files: dict[str, str]) -> str:
    """A unified diff of ``files`` against ``base`` with some surrounding lines, for the Tech Lead."""
    parts: list[str] = []
    for path, new in files.items():
        old = base.get(path)
        parts.extend(difflib.unified_diff((old or "").splitlines(), new.splitlines(),
                                          f"a/{path}" if old is not None else "/dev/null", f"b/{path}",
                                          n=REVIEW_CONTEXT_LINES, lineterm=""))
    return "\n".join(parts)


class ToolStages:
    """The tests stage (QA) and one code attempt (Developer) as tool loops."""

    def __init__(self, ws: Workspace, *, qa: QAAgent, developer: DeveloperAgent, llm: ToolModel,
                 tech_lead: ReviewerAgent | None = None, deps: DependencySteps | None = None):
        self.ws = ws
        self.deps = deps  # the Developer's request_dependency tool (None: no such tool)
        self.qa = qa
        self.dev = developer
        self.tech_lead = tech_lead
        self.llm = llm
        self.guard = LimitGuard(ws.live, ws.memory)
        self.repo_map = RepoMap()
        # task id -> the changed files as they were before the Developer's latest attempt (for the review diff)
        self._bases: dict[str, dict[str, str]] = {}
        # task id -> the passing run of the Developer's accepted finish (reused by the pipeline's attempt)
        self._tested: dict[str, Tested] = {}
        self._bases_lock = threading.Lock()

    # --- shared -------------------------------------------------------------------
    def snapshot(self, branch: str, *, create: bool = False) -> dict[str, str]:
        """Every readable text file of ``branch`` (lock held only while reading)."""
        files: dict[str, str] = {}
        with self.ws.on_branch(branch, create=create):
            for path in self.ws.fs.find_files("**/*"):
                try:
                    files[path.as_posix()] = self.ws.fs.read_file(path)
                except WorkspaceError:
                    continue  # binary, too large or not a regular file: not for the model
        return files

    def test_hook(self, branch: str, on_run: Callable[[TestResult], None] | None = None) -> TestHook:
        def run(changed: dict[str, str], paths: list[str]) -> TestResult:
            with self.ws.on_branch(branch):
                for path, content in changed.items():
                    self.ws.fs.write_file(path, content)
                result = self.ws.runner.run_tests(paths or None)
            self.ws.runner.warm()  # the model is asked next: the next run's process is started meanwhile
            if on_run is not None:
                on_run(result)
            return result
        return run

    def _loop(self, task: Task, role: Role, view: CodeView, branch: str,
              finish_check: Callable[[ToolRegistry], str | None],
              on_run: Callable[[TestResult], None] | None = None, framework: str = "pytest",
              dependency_hook: DependencyHook | None = None,
              dependencies: list[DependencyRequest] | None = None) -> tuple[ToolLoop, ToolRegistry]:
        cfg = self.ws.live.current.agents
        registry = ToolRegistry(view, cfg.tools, run_tests=self.test_hook(branch, on_run),
                                task_words=f"{task.title} {task.description}", repo_map=self.repo_map,
                                request_dependency=dependency_hook, dependencies=dependencies)
        system = tool_system_prompt(role, cfg.for_role(role).system_prompt, framework)
        return ToolLoop(self.llm, self.guard, role=role, system=system, registry=registry, task_id=task.id,
                        finish_check=finish_check), registry

    def _map(self, files: dict[str, str], task: Task, focus: list[str]) -> str:
        cfg = self.ws.live.current.agents.tools
        return self.repo_map.build(files, budget_tokens=cfg.map_tokens, focus=focus,
                                   words=f"{task.title} {task.description}")

    def _record(self, agent: QAAgent | DeveloperAgent, task: Task, outcome: LoopOutcome) -> None:
        agent.record("tool_loop_finished", task, turns=outcome.turns, tool_calls=outcome.tool_calls,
                     files=sorted(outcome.changed), largest_prompt_tokens=outcome.largest_prompt_tokens,
                     refused=outcome.refused[-5:])

    def overview(self) -> str:
        """What the CEO sees of the repository: with tools on, the map of main ranked for the company's
        mission and goals (so generated tasks name real modules); else the former summary."""
        cfg = self.ws.live.current
        if not cfg.agents.tools.enabled:
            return self.ws.summary()
        files = self.snapshot(self.ws.main_branch)
        words = " ".join([cfg.company.mission, cfg.company.strategy, *cfg.company.goals])
        return (f"{len(files)} files. Repository map (ranked for the goals):\n"
                + self.repo_map.build(files, budget_tokens=cfg.agents.tools.map_tokens, words=words))

    # --- QA -----------------------------------------------------------------------
    def write_tests(self, task: Task, branch: str) -> TestsHandoff:
        """QA adds tests through the tools; they are committed on ``branch`` once a fresh run shows
        at least one failing. Returns the stage result for the code stage."""
        tests_dir = normalize(self.ws.live.current.testing.tests_dir).as_posix()
        files = self.snapshot(branch, create=True)
        framework = self.ws.runner.detect_framework()
        self.ws.runner.ensure_runnable(framework)  # before asking QA: jest may not be installed
        view = CodeView(files, WritePolicy(Role.QA, tests_dir, max_bytes=self.ws.fs.max_file_bytes,
                                                  check_path=self.ws.fs.check_writable))

        def new_tests(reg: ToolRegistry) -> list[str]:
            return sorted(p for p in reg.view.changed if is_new_test_file(p, framework))

        gate_runs: list[tuple[dict[str, str], TestResult]] = []

        def gate(reg: ToolRegistry) -> str | None:
            tests = new_tests(reg)
            if not tests:
                name = "<name>.test.js (or .ts)" if framework == "jest" else "test_<name>.py"
                return f"finish refused: add tests first (a tests file named {tests_dir}/{name})"
            if framework == "jest":  # every test must be one the daemon can require by name
                unreadable = [p for t in tests for p in expected_jest_ids(t, reg.view.changed[t])[1]]
                if unreadable:
                    return "finish refused: " + "; ".join(unreadable[:5])
            result = reg.run_tests_hook(dict(reg.view.changed), tests)
            gate_runs.append((dict(reg.view.changed), result))
            problem = fail_first_problem(result)
            return f"finish refused: {problem}" if problem else None

        loop, registry = self._loop(task, Role.QA, view, branch, gate)
        brief = (f"Task (data):\n{task_brief(task)}\n\nRepository map (ranked for this task):\n"
                 f"{self._map(files, task, [])}\n\nWrite the tests for this task first.")
        outcome = loop.run(brief)
        self._record(self.qa, task, outcome)
        tests = new_tests(registry)
        diff = review_diff(files, outcome.changed)
        retired = self._review_retirements(task, registry.view.retired, diff)
        # Given with finish, or asked now, before the lock is taken.
        message = outcome.finish.commit_message("test") or self.qa.commit_message(task, diff)
        # The gate's own run (ours, not the model's word) saw exactly these files; else run again.
        ran, result = gate_runs[-1] if gate_runs else ({}, None)
        with self.ws.on_branch(branch):
            for path, content in outcome.changed.items():
                self.ws.fs.write_file(path, content)
            if result is None or ran != outcome.changed:
                result = self.ws.runner.run_tests(tests)
                if changed := self.ws.changed_by_tests(outcome.changed):
                    raise TaskFailedError(f"{', '.join(changed)} changed while QA's tests ran; nothing committed")
            problem = fail_first_problem(result)
            if problem:
                raise TaskFailedError(f"QA's tests do not fail before the code exists: {problem}")
            paths = sorted(outcome.changed)
            trailers = {"Task-Id": task.id, "Agent": "QA",
                        "Tests": f"{result.test_count} run, {result.failed_count} failing before code"}
            modules = [m for m in outcome.finish.modules if isinstance(m, str)][:10]
            # What a restart resumes from (CodeFlow._committed_suite); only plain paths go in a trailer.
            # ("-": no module named; the tool loop finds the code itself.)
            trailers |= {k: v for k, v in (("Test-File", tests[0]), ("Module", modules[0] if modules else "-"))
                         if _PLAIN_PATH.fullmatch(v)}
            if retired:
                trailers["Retired-Tests"] = ", ".join(n for n in retired if _PLAIN_PATH.fullmatch(n.replace(":", "")))
            current_lease.check()  # fencing: only the attempt holding the lease commits
            # The model's text goes in as free text (made inert); the daemon's trailers are appended last.
            sha = self.ws.git.commit(message.render({}), agent=Role.QA, files=paths, trailers=trailers)
        self.qa.record("tests_committed", task, branch=branch, commit=sha, test_paths=tests)
        return TestsHandoff(branch=branch, test_path=tests[0], test_paths=tests,
                            module_path=modules[0] if modules else "", modules=modules,
                            requirements=[str(r) for r in outcome.finish.requirements[:20]], constraints=[],
                            tests_commit=sha, tests_summary=outcome.finish.summary[:2000])

    def _review_retirements(self, task: Task, retired: dict[str, dict[str, str]], diff: str) -> list[str]:
        """Earlier tests QA removed go in only with the Tech Lead's approval of QA's reasons (logged)."""
        items = [(path, name, reason) for path, tests in retired.items() for name, reason in tests.items()]
        if not items:
            return []
        listed = "\n".join(f"- {path}::{name}: {reason}" for path, name, reason in items)
        self.qa.record("tests_retirement_asked", task, tests=[f"{p}::{n}" for p, n, _ in items],
                       reasons=[r for _, _, r in items])
        if self.tech_lead is None:
            raise TaskFailedError("QA removed earlier tests and no Tech Lead is there to review it")
        prompt = (f"QA wants to remove earlier tests from the regression suite for this task.\nTask: {task.title}\n"
                  f"Tests and QA's reasons (data):\n{listed}\n\nQA's whole change:\n{diff[:30_000]}\n\n"
                  "Approve only if each removed test is wrong or obsolete for this task, not merely inconvenient;"
                  " a removed test no longer protects anything.")
        review = self.tech_lead.ask(prompt, Review, task)
        self.tech_lead.record("tests_retirement_reviewed", task, approve=review.approve,
                              tests=[f"{p}::{n}" for p, n, _ in items], reasons=review.reasons[:5])
        if not review.approve:
            raise TaskFailedError("the Tech Lead refused to let QA remove earlier tests ("
                                  + "; ".join(review.issues or review.reasons or ["no reason given"])[:500]
                                  + "); nothing was committed")
        return [f"{p}::{n}" for p, n, _ in items]

    # --- Developer ------------------------------------------------------------------
    def code_change(self, task: Task, branch: str, suite: CodePayload, *, feedback: list[str],
                    previous: CodeChange | None = None) -> CodeChange:
        """One Developer attempt through the tools, from the branch (plus ``previous``, when fixing).

        ``finish`` runs QA's tests and the tests importing a module the attempt changed (the full
        suite runs once per merge, in the merge queue); their seconds add to ``suite.attempt_test_seconds``.
        """
        tests_dir = normalize(self.ws.live.current.testing.tests_dir).as_posix()
        test_paths = list(suite.test_paths or [suite.test_path])
        files = self.snapshot(branch)
        framework = self.ws.runner.detect_framework()
        policy = WritePolicy(Role.DEVELOPER, tests_dir, guarded=frozenset(test_paths),
                             max_bytes=self.ws.fs.max_file_bytes, check_path=self.ws.fs.check_writable)
        view = CodeView(files, policy)
        for f in previous.files if previous else []:
            try:
                view.write(f.path, f.content, create=normalize(f.path).as_posix() not in view.files)
            except (ToolError, WorkspaceError):
                continue

        def gate(reg: ToolRegistry) -> str | None:
            if not reg.view.changed:
                return "finish refused: you have changed no file yet"
            if reg.awaiting_approval:
                return None  # the package is not installed until a human approves; the daemon tests it then
            selected = affected_tests(self._test_sources(reg.view.files, tests_dir), reg.view.changed,
                                      always=test_paths)
            expected = [i for p in sorted(suite.qa_files()) for i in expected_ids(p, reg.view.files.get(p, ""))]
            result = self._finish_run(task.id, branch, dict(reg.view.changed), selected, expected)
            timed(result)
            if result.outcome == "could_not_run":
                raise TestRunError(f"the test framework could not run: {result.output_tail[-500:]}")
            return None if result.passed else "finish refused: the tests do not pass yet\n" + describe_result(
                result)

        def timed(result: TestResult) -> None:
            suite.attempt_test_seconds += result.duration


        hook = None
        kept: list[DependencyRequest] = []
        waiting = False
        if self.deps is not None:
            def hook(requests: list[DependencyRequest]) -> tuple[bool, str]:
                assert self.deps is not None
                return self.deps.request(task, requests)

            for d in previous.dependencies if previous else []:  # asked for by the previous attempt
                try:
                    waiting = hook([*kept, d])[0]
                    kept.append(d)
                except ToolError as e:
                    feedback = [*feedback, f"dependency {d.name}: {e}"]
        loop, registry = self._loop(task, Role.DEVELOPER, view, branch, gate, on_run=timed, framework=framework,
                                    dependency_hook=hook, dependencies=kept)
        registry.awaiting_approval = waiting
        tests = "\n".join(f"--- {p} ---\n{files.get(p, '(missing)')}" for p in test_paths)[:MAX_TESTS_IN_BRIEF]
        brief = (f"Task (data):\n{task_brief(task)}\n\n"
                 f"Requirements: {json.dumps(suite.requirements)}\n"
                 f"Modules QA expects to change: {json.dumps(suite.modules or [suite.module_path])}\n"
                 f"QA's tests ({', '.join(test_paths)}), which you may not change:\n{tests}\n\n"
                 f"Repository map (ranked for this task):\n{self._map(files, task, test_paths)}\n\n"
                 "Make QA's tests pass without breaking the other tests (the whole suite runs before the merge).")
        if previous:
            brief += f"\n\nYour previous attempt's changes are already applied: {', '.join(view.changed)}."
        if kept:
            brief += "\nDependencies already granted: " + ", ".join(f"{d.name} {d.version}".strip() for d in kept)
        if feedback:
            brief += "\n\nEarlier attempts failed because:\n- " + "\n- ".join(feedback[-6:])
        try:
            outcome = loop.run(brief)
        except AttemptTurnsUsed as e:
            if not registry.view.changed:
                raise
            self.dev.record("tool_loop_out_of_turns", task, reason=str(e), files=sorted(registry.view.changed))
            return self._change(task, files, registry.view.changed, f"unfinished: {e}", registry.dependencies)
        self._record(self.dev, task, outcome)
        return self._change(task, files, outcome.changed, outcome.finish.summary, registry.dependencies,
                            outcome.finish.commit_message("feat"))

    def _finish_run(self, task_id: str, branch: str, changed: dict[str, str], tests: list[str],
                    expected: list[str]) -> TestResult:
        """The Developer's ``finish`` gate: the daemon's own run of ``tests`` (QA's ``expected`` ids must each
        pass) on the branch with ``changed`` written. A pass on a tree the run left as it found it is kept
        (:meth:`finish_tested`): the pipeline's attempt on byte for byte that tree takes its verdict."""
        with self.ws.on_branch(branch):
            for path, content in changed.items():
                self.ws.fs.write_file(path, content)
            result, kept = self.ws.verdict(list(changed), tests, expected)
        with self._bases_lock:
            self._tested.pop(task_id, None)
            if kept is not None:
                self._tested[task_id] = kept
                while len(self._tested) > BASES_KEPT:
                    self._tested.pop(next(iter(self._tested)))
        return result

    def finish_tested(self, task_id: str) -> Tested | None:
        """The passing run of the Developer's last accepted ``finish`` for ``task_id``, taken once."""
        with self._bases_lock:
            return self._tested.pop(task_id, None)

    @staticmethod
    def _test_sources(files: dict[str, str], tests_dir: str) -> dict[str, str]:
        """The test files of the view (path -> source): what the import graph is built from."""
        return {p: c for p, c in files.items() if p.startswith(f"{tests_dir}/")
                and (p.rsplit("/", 1)[-1].startswith("test_") or p.endswith("_test.py")) and p.endswith(".py")}

    def _change(self, task: Task, base: dict[str, str], changed: dict[str, str], approach: str,
                dependencies: list[DependencyRequest] | None = None,
                message: CommitMessage | None = None) -> CodeChange:
        """The attempt as the pipeline's CodeChange; what the changed files were, kept for the review diff."""
        with self._bases_lock:
            self._bases[task.id] = {p: base[p] for p in changed if p in base}
            while len(self._bases) > BASES_KEPT:
                self._bases.pop(next(iter(self._bases)))
        return CodeChange(approach=approach[:2000], files=[SourceFile(path=p, content=c) for p, c in changed.items()],
                          dependencies=list(dependencies or []), commit_message=message)

    def diff_for_review(self, task_id: str, files: dict[str, str]) -> str:
        """The Developer's change as a diff against the branch it started from."""
        with self._bases_lock:
            base = dict(self._bases.get(task_id, {}))
        return review_diff(base, files)
