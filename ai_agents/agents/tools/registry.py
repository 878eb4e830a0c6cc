"""The tools QA and the Developer call, as a typed registry: pydantic arguments, one handler each.

Every handler returns the text the model reads. A refused call (bad path, ambiguous edit,
unknown file) raises :class:`ToolError` and the loop returns its message as an error result:
the model is told why and may try again; nothing is written.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from ai_agents.agents.models import CommitMessage, CommitType, DependencyRequest
from ai_agents.agents.tools.edits import EditError, apply_edit
from ai_agents.agents.tools.repo_map import RepoMap, estimate_tokens
from ai_agents.agents.tools.view import CodeView
from ai_agents.config.models import ToolsConfig
from ai_agents.domain import Role
from ai_agents.errors import ToolError, WorkspaceError
from ai_agents.file_system.find import glob_to_regex, validate_pattern
from ai_agents.llm.tools import ToolSpec
from ai_agents.testing.result import TestResult

FINISH = "finish"
MAX_LINE_CHARS = 300


class FindArgs(BaseModel):
    pattern: str = Field("**/*", description="glob on workspace-relative paths, e.g. 'src/**/*.py'")


class SearchArgs(BaseModel):
    pattern: str = Field(description="Python regular expression searched line by line")
    path_glob: str = Field("**/*", description="only files matching this glob")


class ReadArgs(BaseModel):
    path: str
    start_line: int = Field(1, ge=1)
    end_line: int | None = Field(None, ge=1, description="inclusive; omitted = as many lines as allowed")


class MapArgs(BaseModel):
    focus: list[str] = Field(default_factory=list, description="files or words to rank the map around")


class EditArgs(BaseModel):
    path: str
    old_text: str = Field(description="the exact current text, matching exactly once, with enough context")
    new_text: str = Field(description="the text that replaces it")


class CreateArgs(BaseModel):
    path: str
    content: str


class RetireArgs(BaseModel):
    path: str
    test_name: str = Field(description="the earlier test to remove, e.g. 'test_total' or 'TestCart.test_total'")
    reason: str = Field(min_length=15, max_length=1000, description="why it is wrong or obsolete; the Tech Lead "
                        "reviews it before anything is committed")


class RunTestsArgs(BaseModel):
    paths: list[str] = Field(default_factory=list, description="test files to run; empty = the whole suite")


class FinishArgs(BaseModel):
    summary: str = Field(min_length=1, max_length=4000, description="what was done and why")
    requirements: list[str] = Field(default_factory=list, description="QA: the requirements the tests pin down")
    modules: list[str] = Field(default_factory=list, description="QA: the modules the Developer should change")
    commit_subject: str = Field("", max_length=500, description=(
        "the commit message's subject for your change, in the imperative, at most 72 characters (without it "
        "the daemon asks for a commit message separately)"))
    commit_body: str = Field("", max_length=3000, description="the commit message's body: why the change")

    def commit_message(self, kind: CommitType) -> CommitMessage | None:
        """The commit message given with ``finish`` (``kind``: test or feat), or None when none valid was."""
        if not self.commit_subject.strip():
            return None
        try:
            return CommitMessage(type=kind, subject=self.commit_subject, body=self.commit_body)
        except ValidationError:
            return None


TestHook = Callable[[dict[str, str], list[str]], TestResult]
"""Runs tests on the workspace with the view's changes applied: (changed files, test paths) -> result."""
DependencyHook = Callable[[list[DependencyRequest]], tuple[bool, str]]
"""The supply-chain gate for the Developer's requests so far: (waits for a human?, text for the model);
raises ToolError when refused (see ai_agents.deps.steps.DependencySteps.request)."""


@dataclass(frozen=True)
class Tool:
    spec: ToolSpec
    args: type[BaseModel]
    handler: Callable[[Any], str]


def _clip(line: str) -> str:
    return line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + " …"


def describe_result(result: TestResult, limit: int = 8) -> str:
    """A test run for the model: counts, then each failure's message and the end of its traceback."""
    head = (f"outcome {result.outcome}: {result.passed_count} passed, {result.failed_count} failed, "
            f"{result.errors} errors")
    lines = [head]
    for f in result.failures[:limit]:
        lines.append(f"- {f.test_name}: {f.error_message[:400]}\n  {f.traceback[-800:]}")
    if not result.failures and not result.passed:
        lines.append(result.output_tail[-1500:])
    return "\n".join(lines)


class ToolRegistry:
    """The tools of one loop over one :class:`CodeView`."""

    def __init__(self, view: CodeView, cfg: ToolsConfig, *, run_tests: TestHook, task_words: str = "",
                 repo_map: RepoMap | None = None, request_dependency: DependencyHook | None = None,
                 dependencies: list[DependencyRequest] | None = None):
        self.view = view
        self.dependency_hook = request_dependency
        self.dependencies: list[DependencyRequest] = list(dependencies or [])  # granted or awaiting approval
        self.awaiting_approval = False
        self.cfg = cfg
        self.run_tests_hook = run_tests
        self.task_words = task_words
        self.repo_map = repo_map or RepoMap()
        self.test_runs = 0
        self.last_result: TestResult | None = None
        self.tools: dict[str, Tool] = {}
        entries: list[tuple[str, str, type[BaseModel], Callable[[Any], str]]] = [
            ("find_files", "List workspace files whose path matches a glob (capped).", FindArgs, self.find_files),
            ("search", "Search file contents with a regex; answers path:line: text (capped).", SearchArgs,
             self.search),
            ("read_file", "Read a file by line range, with line numbers.", ReadArgs, self.read_file),
            ("repo_map", "The repository's classes and functions with signatures, ranked by relevance.",
             MapArgs, self.map),
            ("edit_file", "Replace old_text (exact, matching once) by new_text in an existing file.", EditArgs,
             self.edit_file),
            ("create_file", "Create a new file with its whole content.", CreateArgs, self.create_file),
            ("run_tests", "Run the tests with your changes applied; empty paths = the whole suite.",
             RunTestsArgs, self.run_tests),
            ("request_dependency", "Developer only: ask for a third-party package (ecosystem python or npm) your "
             "code needs. The daemon checks it against the project's allow/deny lists, installs it (or the task "
             "waits for a human's approval) and commits the manifest and lock file; never write those files.",
             DependencyRequest, self.request_dependency),
            ("retire_test", "QA only: remove an earlier test that is wrong or obsolete, with the reason (the "
             "Tech Lead reviews it).", RetireArgs, self.retire_test),
            (FINISH, "Finish: say what you did. Call it only when your work is complete.", FinishArgs,
             lambda a: "finished"),
        ]
        for name, description, args, handler in entries:
            if name == "retire_test" and view.policy.role != Role.QA:
                continue
            if name == "request_dependency" and (view.policy.role != Role.DEVELOPER or request_dependency is None):
                continue
            self.tools[name] = Tool(ToolSpec.from_model(name, description, args), args, handler)

    @property
    def specs(self) -> list[ToolSpec]:
        return [t.spec for t in self.tools.values()]

    def call(self, name: str, arguments: dict[str, Any]) -> tuple[str, bool, BaseModel | None]:
        """(result text, is_error, parsed arguments). Never raises for a bad call: the model is told."""
        tool = self.tools.get(name)
        if tool is None:
            return f"unknown tool {name!r}; the tools are: {', '.join(self.tools)}", True, None
        try:
            args = tool.args.model_validate(arguments)
        except ValidationError as e:
            problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'arguments'}: {err['msg']}"
                                 for err in e.errors()[:5])
            return f"invalid arguments for {name}: {problems}", True, None
        try:
            return tool.handler(args), False, args
        except (ToolError, EditError, WorkspaceError) as e:
            return str(e), True, args

    # --- handlers -------------------------------------------------------------------
    def _glob(self, pattern: str) -> re.Pattern[str]:
        try:
            return glob_to_regex(validate_pattern(pattern))
        except WorkspaceError as e:
            raise ToolError(str(e)) from None

    def find_files(self, a: FindArgs) -> str:
        regex = self._glob(a.pattern)
        hits = sorted(p for p in self.view.files if regex.match(p))
        cap = self.cfg.search_max_results * 2
        more = f"\n({len(hits) - cap} more; narrow the pattern)" if len(hits) > cap else ""
        return ("\n".join(hits[:cap]) + more) if hits else f"no file matches {a.pattern!r}"

    def search(self, a: SearchArgs) -> str:
        try:
            regex = re.compile(a.pattern)
        except re.error as e:
            raise ToolError(f"invalid regular expression {a.pattern!r}: {e}") from None
        where = self._glob(a.path_glob)
        cap, total = self.cfg.search_max_results, 0
        hits: list[str] = []
        for path in sorted(self.view.files):
            if not where.match(path):
                continue
            for n, line in enumerate(self.view.files[path].splitlines(), 1):
                if regex.search(line):
                    total += 1
                    if len(hits) < cap:
                        hits.append(f"{path}:{n}: {_clip(line.strip())}")
        if not hits:
            return f"no match for {a.pattern!r} in {a.path_glob}"
        more = f"\n({total - cap} more matches not shown; narrow the pattern or the path_glob)" if total > cap else ""
        return "\n".join(hits) + more

    def read_file(self, a: ReadArgs) -> str:
        path, text = self.view.read(a.path)
        lines = text.splitlines()
        if not lines:
            return f"{path} is empty"
        if a.start_line > len(lines):
            raise ToolError(f"{path} has {len(lines)} lines; start_line {a.start_line} is past the end of the file")
        end = min(a.end_line or len(lines), len(lines), a.start_line + self.cfg.read_max_lines - 1)
        if end < a.start_line:
            raise ToolError(f"end_line {a.end_line} is before start_line {a.start_line}")
        body = "\n".join(f"{n:>5}| {_clip(lines[n - 1])}" for n in range(a.start_line, end + 1))
        rest = f"\n({path}: lines {a.start_line}-{end} of {len(lines)}; read on with start_line={end + 1})" \
            if end < len(lines) else f"\n({path}: end of file, {len(lines)} lines)"
        return body + rest

    def map(self, a: MapArgs) -> str:
        focus = [p for p in a.focus if p in self.view.files] + list(self.view.changed)
        words = " ".join([self.task_words, *a.focus])
        return self.repo_map.build(self.view.files, budget_tokens=self.cfg.map_tokens, focus=focus, words=words)

    def edit_file(self, a: EditArgs) -> str:
        path, text = self.view.read(a.path)
        self.view.policy.path(path)  # refuse before matching: the reason that matters comes first
        new, how = apply_edit(path, text, a.old_text, a.new_text)
        self.view.write(path, new, create=False)
        return f"edited {path}: {how}"

    def create_file(self, a: CreateArgs) -> str:
        path = self.view.write(a.path, a.content, create=True)
        return f"created {path} ({len(a.content.splitlines())} lines)"

    def request_dependency(self, a: DependencyRequest) -> str:
        assert self.dependency_hook is not None
        wanted = [d for d in self.dependencies if (d.ecosystem, d.name.lower()) != (a.ecosystem, a.name.lower())]
        if len(wanted) >= 10:
            raise ToolError("at most 10 dependencies per change")
        awaiting, text = self.dependency_hook([*wanted, a])  # ToolError: refused, the list stays as it was
        self.dependencies = [*wanted, a]
        self.awaiting_approval = awaiting
        return text

    def retire_test(self, a: RetireArgs) -> str:
        path = self.view.retire(a.path, a.test_name, a.reason)
        return f"removed {a.test_name} from {path}; the Tech Lead reviews the reason before the commit"

    def run_tests(self, a: RunTestsArgs) -> str:
        paths = [self.view.resolve(p) for p in a.paths]
        missing = [p for p in paths if p not in self.view.files]
        if missing:
            raise ToolError(f"no such test file: {', '.join(missing)}")
        self.test_runs += 1
        result = self.run_tests_hook(dict(self.view.changed), paths)
        self.last_result = result
        text = describe_result(result)
        limit = self.cfg.context_tokens // 4
        return text if estimate_tokens(text) <= limit else text[: limit * 4] + "\n(cut)"
