"""Measurable code quality for the Tech Lead's review (seed 002's reviewer): style, complexity, tests."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from ai_agents.testing.result import TestResult

_BRANCHES = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.IfExp, ast.ExceptHandler, ast.With, ast.AsyncWith,
             ast.Assert, ast.comprehension, ast.match_case)


def cyclomatic_complexity(source: str) -> dict[str, int]:
    """McCabe-style complexity per function: 1 + branches + extra boolean operands."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}
    scores: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            score = 1
            for child in ast.walk(node):
                if isinstance(child, _BRANCHES):
                    score += 1
                elif isinstance(child, ast.BoolOp):
                    score += len(child.values) - 1
            scores[f"{node.name}:{node.lineno}"] = score
    return scores


def ruff_issues(workspace: Path, files: list[str], timeout: float = 60) -> tuple[list[str], str]:
    """Style problems from ruff (when installed) as 'path:line code message' strings, plus a note."""
    if not files:
        return [], "no files"
    try:
        # Outside the sandbox, in the workspace: -I keeps the workspace off sys.path, or a ruff.py
        # written by the model would run here with the daemon's rights; "--" keeps file names file names.
        proc = subprocess.run(
            [sys.executable, "-I", "-m", "ruff", "check", "--no-cache", "--output-format=json", "--isolated",
             "--select", "E,F,W,B", "--line-length", "120", "--", *files],
            cwd=workspace, capture_output=True, text=True, timeout=timeout,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        )
    except subprocess.TimeoutExpired:
        return [], "ruff timed out"
    if proc.returncode not in (0, 1) or not proc.stdout.strip().startswith("["):
        return [], "ruff not available: " + (proc.stderr.strip().splitlines() or ["unknown error"])[-1][:200]
    issues = [f"{d['filename'].removeprefix(str(workspace) + '/')}:{d['location']['row']} {d['code']} {d['message']}"
              for d in json.loads(proc.stdout)]
    return issues, "ruff"


def quality_report(workspace: Path, files: dict[str, str], test_result: TestResult | None) -> dict[str, Any]:
    """What the Tech Lead sees besides the code: style, complexity, test counts."""
    complexity = {path: cyclomatic_complexity(src) for path, src in files.items() if path.endswith(".py")}
    worst = max((v for scores in complexity.values() for v in scores.values()), default=0)
    style, style_tool = ruff_issues(workspace, [p for p in files if p.endswith(".py")])
    return {
        "style_tool": style_tool,
        "style_issues": style[:30],
        "max_complexity": worst,
        "complexity": complexity,
        "tests_passed": test_result.passed_count if test_result else None,
        "tests_total": test_result.test_count if test_result else None,
        "coverage": "not measured (coverage is not installed in the daemon's environment)",
    }
