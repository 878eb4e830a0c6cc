"""Measurable code quality for the Tech Lead's review (seed 002's reviewer): style, complexity, tests."""

from __future__ import annotations

import ast
import json
import subprocess
import tempfile
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


def ruff_issues(files: dict[str, str], timeout: float = 60) -> tuple[list[str], str]:
    """Style problems from ruff (when installed) as 'path:line code message' strings, plus a note.

    ruff checks a private copy of ``files`` (path -> text, the texts the Tech Lead is shown), never the
    workspace: the review is asked while the tests run there, and code under test could rewrite a file
    between its read and ruff's. The binary runs directly (``python -m ruff`` would start an
    interpreter first, and in the workspace would import a ruff.py the model wrote).
    """
    sources = {p: c for p, c in files.items() if p.endswith(".py")}
    if not sources:
        return [], "no files"
    try:
        from ruff import find_ruff_bin

        ruff = find_ruff_bin()
    except (ImportError, FileNotFoundError) as e:
        return [], f"ruff not available: {str(e).splitlines()[0][:200] if str(e) else type(e).__name__}"
    with tempfile.TemporaryDirectory(prefix="ai-agents-ruff-") as tmp:
        root = Path(tmp).resolve()
        names = []
        for path, text in sources.items():
            target = (root / path).resolve()
            if not target.is_relative_to(root) or target == root:
                continue  # not a relative path inside the copy (the pipeline's paths always are)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            names.append(target.relative_to(root).as_posix())
        try:
            # "--" keeps file names file names; --isolated: no configuration file is looked for.
            proc = subprocess.run(
                [ruff, "check", "--no-cache", "--output-format=json", "--isolated",
                 "--select", "E,F,W,B", "--line-length", "120", "--", *names],
                cwd=root, capture_output=True, text=True, timeout=timeout,
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
            )
        except subprocess.TimeoutExpired:
            return [], "ruff timed out"
    if proc.returncode not in (0, 1) or not proc.stdout.strip().startswith("["):
        return [], "ruff not available: " + (proc.stderr.strip().splitlines() or ["unknown error"])[-1][:200]
    issues = [f"{d['filename'].removeprefix(str(root) + '/')}:{d['location']['row']} {d['code']} {d['message']}"
              for d in json.loads(proc.stdout)]
    return issues, "ruff"


def quality_report(files: dict[str, str], test_result: TestResult | None) -> dict[str, Any]:
    """What the Tech Lead sees besides the code (``files``: path -> text): style, complexity, test counts."""
    complexity = {path: cyclomatic_complexity(src) for path, src in files.items() if path.endswith(".py")}
    worst = max((v for scores in complexity.values() for v in scores.values()), default=0)
    style, style_tool = ruff_issues(files)
    return {
        "style_tool": style_tool,
        "style_issues": style[:30],
        "max_complexity": worst,
        "complexity": complexity,
        "tests_passed": test_result.passed_count if test_result else None,
        "tests_total": test_result.test_count if test_result else None,
        "coverage": "not measured (coverage is not installed in the daemon's environment)",
    }
