"""Which tests an attempt runs: QA's own and those that import a changed module (a simple import graph).

The full suite runs once per merge, in the merge queue, on the exact tree that becomes main; an
attempt only needs the tests its change can affect, so its cost does not grow with the repository.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping


def module_names(path: str) -> set[str]:
    """The dotted names importing ``path`` (a .py file, workspace-relative) can use: pkg.mod, and pkg
    for a package's __init__.py."""
    if not path.endswith(".py"):
        return set()
    parts = path[:-3].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return {".".join(parts)} if parts else set()


def imported(source: str) -> set[str]:
    """Every module name ``source`` imports, with each ``from pkg import name`` also as ``pkg.name``."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def affected_tests(tests: Mapping[str, str], changed: Iterable[str], always: Iterable[str] = ()) -> list[str]:
    """Test files (path -> source) that import a module of ``changed``, plus ``always`` (QA's files)."""
    wanted: set[str] = set()
    for path in changed:
        wanted |= module_names(path)
    chosen = set(always)
    for path, source in tests.items():
        if any(_related(name, module) for name in imported(source) for module in wanted):
            chosen.add(path)
    return sorted(chosen)


def _related(name: str, module: str) -> bool:
    """``name`` (imported) reaches ``module`` (changed): the module itself, something in it, or its package."""
    return name == module or name.startswith(f"{module}.") or module.startswith(f"{name}.")
