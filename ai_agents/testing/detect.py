"""Which test framework a project uses, from the files it has."""

from __future__ import annotations

import json
from pathlib import Path

_JEST_CONFIGS = ("jest.config.js", "jest.config.ts", "jest.config.mjs", "jest.config.cjs", "jest.config.json")


def _read(path: Path, limit: int = 200_000) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read(limit)
    except OSError:
        return ""


def uses_jest(root: Path) -> bool:
    if any((root / name).is_file() for name in _JEST_CONFIGS):
        return True
    package = root / "package.json"
    if not package.is_file():
        return False
    try:
        data = json.loads(_read(package))
    except json.JSONDecodeError:
        return False
    if not isinstance(data, dict):
        return False
    deps = {**(data.get("dependencies") or {}), **(data.get("devDependencies") or {})}
    test_script = str((data.get("scripts") or {}).get("test", ""))
    return "jest" in deps or "jest" in data or "jest" in test_script


def uses_pytest(root: Path, tests_dir: str = "tests") -> bool:
    if (root / "pytest.ini").is_file() or (root / "conftest.py").is_file():
        return True
    if "[tool.pytest" in _read(root / "pyproject.toml"):
        return True
    if "[tool:pytest]" in _read(root / "setup.cfg") or "[pytest]" in _read(root / "tox.ini"):
        return True
    tests = root / tests_dir
    if tests.is_dir() and any(tests.glob("**/*.py")):
        return True
    return any(root.glob("test_*.py")) or any(root.glob("*_test.py"))


def detect_framework(root: Path, tests_dir: str = "tests") -> str:
    """"pytest" or "jest". Python markers win; with no marker at all, pytest (it reports "no tests")."""
    if uses_pytest(root, tests_dir):
        return "pytest"
    if uses_jest(root):
        return "jest"
    return "pytest"
