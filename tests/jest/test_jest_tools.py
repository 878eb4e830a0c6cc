"""A jest project end to end in tool mode: QA writes ``*.test.js`` through tools, the Developer asks for an
npm package with ``request_dependency`` (allow-listed: installed into the workspace's node_modules by real
npm, package.json and package-lock.json committed with the code) and writes the JS module that uses it.
is-odd 3.0.1 needs is-number 6 while jest's tree holds is-number 7: the lock nests it, and so does the install."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ai_agents.domain import TaskStatus
from ai_agents.llm.script import Script
from tests.agents_tools.support import call, tool_results
from tests.conftest import wait_for
from tests.jest.conftest import jest_dir
from tests.jest.test_jest_pipeline import js_rules
from tests.registries import npm_registry_or_skip

MODULE = ("'use strict';\nconst isOdd = require('is-odd');\n\nfunction number(value) {\n"
          "  if (typeof value !== 'number' || Number.isNaN(value)) {\n"
          "    throw new TypeError(`expected a number, got ${typeof value}`);\n  }\n  return value;\n}\n\n"
          "module.exports = {\n  celsiusToFahrenheit: (c) => (number(c) * 9) / 5 + 32,\n"
          "  fahrenheitToCelsius: (f) => ((number(f) - 32) * 5) / 9,\n  isOddDegree: (d) => isOdd(d),\n};\n")
DEVELOPER = [
    {"tool_calls": [{"name": "request_dependency",  # denied
                     "arguments": {"name": "left-pad", "version": "1.3.0", "ecosystem": "npm", "why": "padding"}}]},
    {"tool_calls": [{"name": "request_dependency", "arguments": {"name": "is-odd", "version": "3.0.1",
                                                                 "ecosystem": "npm", "why": "odd degrees"}}]},
    call("create_file", path="src/temperature.js", content=MODULE),
    call("create_file", path="package.json", content="{}\n"),  # the manifest is the daemon's: refused
    call("run_tests"),
    call("finish", summary="both conversions; is-number rejects non-numbers"),
]


def git(ws: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(ws), *args], capture_output=True, text=True, check=True).stdout


def own_jest_project(ws: Path, cache: Path) -> None:
    """The jest cache's manifest and lock, and a hard-linked copy of its node_modules (a real directory, so
    what the daemon installs lands in this workspace only)."""
    for name in ("package.json", "package-lock.json"):
        shutil.copy(cache / name, ws / name)

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(cache / "node_modules", ws / "node_modules", symlinks=True, copy_function=link)


# Slow step: the default suite covers its parts cheaper: jest through the pipeline (test_jest_pipeline.py),
# request_dependency in tool mode through the same gate (tests/deps/test_tool_deps.py), npm installs with
# the lock committed (tests/deps/test_npm_deps.py), QA's jest tests kept (the test below).
@pytest.mark.slow
def test_jest_project_in_tool_mode_with_an_npm_package(fake_llm, build, jest_modules):
    npm_registry_or_skip()
    rules: list[dict[str, Any]] = [r for r in js_rules() if r["when"]["schema"] != "tools" or
                                   "QA" in r["when"]["contains"]]
    rules.insert(0, {"when": {"schema": "tools", "contains": "You are a senior Python"}, "replies": DEVELOPER})
    fake_llm.set_script(Script.from_data({"rules": rules}))
    app = build(fake_llm, {"agents": {"tools": {"enabled": True}}, "testing": {"framework": "auto"},
                           "dependencies": {"allow": ["jest", "is-odd", "is-number", "left-pad"], "deny": ["left-*"]}},
                start=False)
    ws = Path(app.live.current.file_system.workspace_path)
    own_jest_project(ws, jest_dir())
    git(ws, "add", "package.json", "package-lock.json")
    git(ws, "-c", "user.name=Owner", "-c", "user.email=owner@example.com", "commit", "-qm", "chore: jest project")
    app.start()
    task = app.orchestrator.submit_task("code", title="Add a temperature converter module",
                                        description="src/temperature.js with both conversions")
    done = wait_for(lambda: (t := app.tasks.get(task.id)) and t.status in
                    (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.ESCALATED) and t, timeout=180,
                    message="the jest task settled")
    assert done.status == TaskStatus.COMPLETED, done.error
    log = app.workspace.git.log(4)
    code, tests = log[1], log[2]
    assert git(ws, "show", "--name-only", "--format=", tests["sha"]).split() == ["tests/temperature.test.js"]
    assert sorted(git(ws, "show", "--name-only", "--format=", code["sha"]).split()) == [
        "package-lock.json", "package.json", "src/temperature.js"]
    assert json.loads((ws / "package.json").read_text())["dependencies"]["is-odd"] == "3.0.1"
    lock = json.loads((ws / "package-lock.json").read_text())["packages"]
    odd, nested = lock["node_modules/is-odd"], lock["node_modules/is-odd/node_modules/is-number"]
    assert odd["version"] == "3.0.1" and nested["version"].startswith("6.") and odd["integrity"].startswith("sha512-")
    assert lock["node_modules/is-number"]["version"] == "7.0.0"  # jest's, untouched
    modules = ws / "node_modules"
    assert json.loads((modules / "is-odd/node_modules/is-number/package.json").read_text())["version"] == \
        nested["version"]
    assert json.loads((modules / "is-number/package.json").read_text())["version"] == "7.0.0"
    assert not (jest_dir() / "node_modules" / "is-odd").exists()  # the shared jest cache untouched
    installed = [a["details"] for a in app.memory.activities(task.id) if a["activity"] == "dependency_installed"]
    assert {(p["name"], p["version"], p["integrity"]) for p in installed[0]["packages"]} == {
        ("is-odd", "3.0.1", odd["integrity"]), ("is-number", nested["version"], nested["integrity"])}
    told = tool_results(fake_llm, "developer")
    assert any("left-pad is denied by dependencies.deny" in r for r in told)
    assert any(r.startswith("installed is-odd==3.0.1") for r in told)
    assert any("write refused" in r and "package.json" in r for r in told)
    assert "Tests: 4 passed" in code["message"]
    # QA's tests were jest's: the QA tool loop saw the jest rules
    assert any("tests/temperature.test.js" in r for r in tool_results(fake_llm, "qa"))


def test_qa_may_not_remove_or_rename_an_earlier_jest_test():
    from ai_agents.agents.tools.view import WritePolicy
    from ai_agents.domain import Role
    from ai_agents.errors import ToolError

    policy = WritePolicy(Role.QA, "tests")
    before = "describe('calc', () => {\n  test('adds', () => { expect(1).toBe(1); });\n});\n"
    policy.check_content("tests/calc.test.js", before, before + "test('subtracts', () => {});\n")  # adding: fine
    for after in ("", before.replace("'adds'", "'adds maybe'"), before.replace("test(", "test.skip(")):
        try:
            policy.check_content("tests/calc.test.js", before, after)
        except ToolError as e:
            assert "calc > adds" in str(e)
        else:
            raise AssertionError(f"not refused: {after!r}")
