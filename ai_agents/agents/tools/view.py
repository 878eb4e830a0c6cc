"""CodeView: the files an agent's tool loop sees and changes, and the rules for its writes.

The loop never holds the workspace lock while it waits on the model: it works on a snapshot
of the task branch taken under the lock, and its edits stay in the view until the tests
run or the change is applied, both under the lock and through the file-system manager. The
view applies the same path rules first, so a refused path is refused at the tool call,
with the reason returned to the model.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from ai_agents.domain import Role
from ai_agents.errors import ToolError, WorkspaceError
from ai_agents.file_system.paths import normalize
from ai_agents.testing.jest_verdict import expected_jest_ids, is_jest_file

# The manifests and lock files only the daemon writes (the Developer asks with request_dependency).
MANIFESTS = frozenset({"requirements.txt", "requirements.lock", "package.json", "package-lock.json"})
# Files that decide how tests are collected or run (see orchestrator.workspace.TEST_HARNESS_FILES).
HARNESS_FILES = MANIFESTS | frozenset({"conftest.py", "pytest.ini", ".pytest.ini", "pytest.toml", ".pytest.toml",
                                       "pyproject.toml", "setup.cfg", "tox.ini", "jest.config.js", "jest.config.ts",
                                       "jest.config.cjs", "jest.config.mjs", "jest.config.json", "babel.config.js",
                                       "babel.config.json", ".babelrc", ".babelrc.js", "tsconfig.json",
                                       ".gitignore", ".gitattributes"})


def defined_tests(source: str) -> dict[str, str] | None:
    """Each test function or method (``Class.test_x``) of a pytest file -> its AST dump; None if unparsable."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
            found[node.name] = ast.dump(node)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name.startswith("test"):
                    found[f"{node.name}.{item.name}"] = ast.dump(item)
    return found




@dataclass(frozen=True)
class WritePolicy:
    """Who may write where. QA: only test files under the tests directory, never removing or changing
    an earlier test. Developer: anywhere else, never the tests, the test harness files or ``guarded`` paths."""

    role: Role
    tests_dir: str = "tests"
    guarded: frozenset[str] = frozenset()
    max_bytes: int = 1_000_000
    """The file-system manager's limit per file."""
    check_path: Callable[[str], str] = field(default=lambda p: normalize(p).as_posix())
    """The file-system manager's own check (protected and read-only globs, symlinks): the normal path."""

    def path(self, raw: str) -> str:
        try:
            path = self.check_path(raw)
        except WorkspaceError as e:
            raise ToolError(f"write refused: {e}") from None
        name = path.rsplit("/", 1)[-1]
        in_tests = path.startswith(f"{self.tests_dir}/")
        if self.role == Role.QA:
            if not in_tests:
                raise ToolError(f"write refused: {path} is outside {self.tests_dir}/; QA writes tests only "
                                "(the Developer writes the code)")
            if name in HARNESS_FILES:
                raise ToolError(f"write refused: {path} is test configuration, which could skip or hide the "
                                "earlier tests; put fixtures and helpers in the test file itself")
        elif name in MANIFESTS:
            raise ToolError(f"write refused: {path} is written by the daemon: ask for a package with "
                            "request_dependency (it is gated, installed, and the manifest and lock committed)")
        elif in_tests or name in HARNESS_FILES or path in self.guarded:
            raise ToolError(f"write refused: {path} belongs to QA's tests; the Developer may not change tests, "
                            "test configuration or QA's files. Change the code so the tests pass.")
        return path

    def check_content(self, path: str, before: str | None, after: str, retired: Iterable[str] = ()) -> None:
        """QA may add tests; an earlier test (on the main branch) may not disappear or change, unless
        it was retired with a reason (``retire_test``), which the Tech Lead reviews."""
        if self.role == Role.QA and before is not None and is_jest_file(path):
            # jest: the names are checked (a test's body is not compared, as pytest's AST is)
            kept = set(expected_jest_ids(path, after)[0])
            gone = [i.split("::", 1)[1] for i in expected_jest_ids(path, before)[0] if i not in kept]
            if gone:
                raise ToolError(f"write refused: the edit removes or renames {', '.join(gone[:5])} in {path}. "
                                "Earlier tests are the regression suite: add new tests beside them.")
            return
        if self.role != Role.QA or before is None or not path.endswith(".py"):
            return
        old = defined_tests(before) or {}
        new = defined_tests(after)
        if new is None:
            raise ToolError(f"write refused: {path} would not parse as Python")
        gone = [n for n in old if n not in new and n not in set(retired)]
        changed = [n for n in old if n in new and new[n] != old[n]]
        if gone or changed:
            what = "; ".join(filter(None, [f"removes {', '.join(gone)}" if gone else "",
                                           f"changes {', '.join(changed)}" if changed else ""]))
            raise ToolError(f"write refused: the edit {what} in {path}. Earlier tests are the regression "
                            "suite: add new tests beside them instead of deleting or weakening them (a test that "
                            "is wrong may be retired with retire_test and a reason, which the Tech Lead reviews).")


def _find_test(tree: ast.Module, name: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    cls, _, func = name.rpartition(".")
    body = tree.body
    if cls:
        owner = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls), None)
        body = owner.body if owner else []
    return next((n for n in body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == func), None)


class CodeView:
    """A snapshot of the workspace (path -> text) plus this loop's changes."""

    def __init__(self, files: Mapping[str, str], policy: WritePolicy):
        self.base = dict(files)
        self.files = dict(files)
        self.policy = policy
        self.changed: dict[str, str] = {}
        self.retired: dict[str, dict[str, str]] = {}
        """path -> {test name -> the reason QA gave} for earlier tests QA asked to remove."""

    def retire(self, raw: str, name: str, reason: str) -> str:
        """QA removes one earlier test, with a reason the Tech Lead will review."""
        if self.policy.role != Role.QA:
            raise ToolError("only QA may retire a test")
        path = self.policy.path(raw)
        base = defined_tests(self.base.get(path, "")) or {}
        if name not in base:
            known = ", ".join(sorted(base)) or "none"
            raise ToolError(f"{name} is not an earlier test of {path} (its tests on the main branch: {known})")
        text = self.files[path]
        tree = ast.parse(text)
        node = _find_test(tree, name)
        if node is None:
            raise ToolError(f"{name} is no longer in {path}")
        lines = text.split("\n")
        first = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
        del lines[first:node.end_lineno]
        self.retired.setdefault(path, {})[name] = reason
        try:
            return self.write(path, "\n".join(lines), create=False)
        except ToolError:
            del self.retired[path][name]
            raise

    def resolve(self, raw: str) -> str:
        try:
            return normalize(raw).as_posix()
        except WorkspaceError as e:
            raise ToolError(str(e)) from None

    def read(self, raw: str) -> tuple[str, str]:
        path = self.resolve(raw)
        if path not in self.files:
            stem = path.rsplit("/", 1)[-1]
            like = [p for p in self.files if p.rsplit("/", 1)[-1] == stem][:5]
            hint = f"; files with that name: {', '.join(like)}" if like else "; use find_files to locate it"
            raise ToolError(f"{path} does not exist{hint}")
        return path, self.files[path]

    def write(self, raw: str, content: str, *, create: bool) -> str:
        path = self.policy.path(raw)
        before = self.files.get(path)
        if create and before is not None:
            raise ToolError(f"{path} already exists; change it with edit_file (search/replace)")
        if not create and before is None:
            raise ToolError(f"{path} does not exist; use create_file for a new file")
        size = len(content.encode("utf-8", "replace"))
        if size > self.policy.max_bytes:
            raise ToolError(f"write refused: {path} would be {size} bytes, over the {self.policy.max_bytes}-byte "
                            "limit per file")
        self.policy.check_content(path, self.base.get(path), content, self.retired.get(path, {}))
        if path.endswith(".py"):
            try:
                compile(content, path, "exec", dont_inherit=True)
            except (SyntaxError, ValueError) as e:
                line = getattr(e, "lineno", None)
                raise ToolError(f"the result would not be valid Python ({type(e).__name__}: "
                                f"{getattr(e, 'msg', e)} at line {line}); nothing was changed") from None
        self.files[path] = content
        self.changed[path] = content
        return path
