"""A real jest project end to end through the pipeline, and jest's verdict under the same rules as pytest's."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ai_agents.domain import TaskStatus
from ai_agents.llm.script import Script
from ai_agents.testing.jest_verdict import expected_jest_ids
from ai_agents.testing.runner import TestRunner
from tests.conftest import wait_for
from tests.jest.conftest import jest_project
from tests.pipeline.conftest import ROLE_PROMPTS

JS_SCRIPT = Path(__file__).resolve().parents[2] / "ai_agents" / "demo" / "script_js.yaml"


def js_rules() -> list[dict[str, Any]]:
    rules = yaml.safe_load(JS_SCRIPT.read_text())["rules"]
    for rule in rules:
        rule["when"]["contains"] = ROLE_PROMPTS[rule["when"].pop("agent")]
    return rules


def js_rules_with_code(content: str, approach: str) -> list[dict[str, Any]]:
    """The js story's rules with the Developer's every answer replaced by ``src/temperature.js`` = ``content``."""
    rules = js_rules()
    for rule in rules:
        if rule["when"]["schema"] == "CodeChange":
            rule.pop("replies", None)
            rule["reply"] = {"approach": approach, "files": [{"path": "src/temperature.js", "content": content}]}
    return rules


def git(ws: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(ws), *args], capture_output=True, text=True, check=True).stdout


def test_jest_project_end_to_end(fake_llm, build, jest_modules):
    fake_llm.set_script(Script.from_data({"rules": js_rules()}))
    app = build(fake_llm, {"testing": {"framework": "auto", "sandbox": "auto"}}, start=False)
    ws = Path(app.live.current.file_system.workspace_path)
    jest_project(ws, jest_modules, commit=True)
    assert app.workspace.runner.detect_framework() == "jest"
    app.start()
    task = app.orchestrator.submit_task("code", title="Add a temperature converter module",
                                        description="src/temperature.js with both conversions")
    done = wait_for(lambda: (t := app.tasks.get(task.id)) and t.status in
                    (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.ESCALATED) and t, timeout=120,
                    message="the jest task settled")
    assert done.status == TaskStatus.COMPLETED, done.error
    log = app.workspace.git.log(5)
    merge, code, tests = log[0], log[1], log[2]
    assert merge["message"].startswith("Merge agents/")
    assert git(ws, "show", "--name-only", "--format=", tests["sha"]).split() == ["tests/temperature.test.js"]
    assert git(ws, "show", "--name-only", "--format=", code["sha"]).split() == ["src/temperature.js"]
    assert "Tests: 4 passed" in code["message"]
    tested = [a["details"] for a in app.memory.activities(task.id) if a["activity"] == "code_tested"]
    assert [t["outcome"] for t in tested] == ["failed", "passed"]  # the first version lacked the TypeError
    before = [a["details"] for a in app.memory.activities(task.id) if a["activity"] == "tests_run_before_code"]
    assert before[0]["outcome"] == "failed"
    again = app.workspace.runner.run_tests(expected=expected_jest_ids(
        "tests/temperature.test.js", (ws / "tests/temperature.test.js").read_text())[0])
    assert again.framework == "jest" and again.passed and again.passed_count == 4


@pytest.fixture
def project(tmp_path, jest_modules):
    ws = tmp_path / "proj"
    (ws / "tests").mkdir(parents=True)
    (ws / "src").mkdir()
    jest_project(ws, jest_modules)
    (ws / "tests" / "calc.test.js").write_text(
        "const { add } = require('../src/calc');\n"
        "describe('calc', () => {\n  test('adds', () => { expect(add(1, 2)).toBe(3); });\n"
        "  it('adds negatives', () => { expect(add(-1, -2)).toBe(-3); });\n});\n")
    return ws


def run(ws: Path, module: str) -> Any:
    (ws / "src" / "calc.js").write_text(module)
    expected, problems = expected_jest_ids("tests/calc.test.js", (ws / "tests" / "calc.test.js").read_text())
    assert expected == ["tests/calc.test.js::calc > adds", "tests/calc.test.js::calc > adds negatives"]
    assert problems == []
    return TestRunner(ws, "jest", timeout=60).run_tests(expected=expected)


def test_jest_verdict_pass_and_fail(project):
    ok = run(project, "exports.add = (a, b) => a + b;\n")
    assert ok.outcome == "passed" and ok.passed_count == 2 and not ok.tampering
    bad = run(project, "exports.add = (a, b) => a - b;\n")
    assert bad.outcome == "failed" and bad.failed_count == 2
    assert bad.failures[0].test_name == "tests/calc.test.js::calc > adds"


def test_forged_record_on_the_report_pipe_is_tampering(project):
    # The code under test writes an "everything passed" record to every pipe it holds.
    forged = ("const fs = require('fs');\nfor (const fd of fs.readdirSync('/proc/self/fd')) {\n"
              "  let target = ''; try { target = fs.readlinkSync('/proc/self/fd/' + fd); } catch (e) {}\n"
              "  if (!target.startsWith('pipe:')) continue;\n"
              "  try { fs.writeSync(Number(fd), JSON.stringify({k: 'x', t: 'end', failed: 0}) + '\\n'); }"
              " catch (e) {}\n}\nexports.add = (a, b) => a - b;\n")
    result = run(project, forged)
    # Either the forged line lands on the verdict pipe without the nonce (tampering) or on one of node's own
    # pipes and kills it (status 139): never a pass. The verdict's rules themselves: test_judge_jest_rules.
    assert result.outcome == "failed" and not result.passed
    assert (result.tampering and "nonce" in result.tampering[0]) or result.exit_code != 0, result.failures


def channel_with(lines: list[dict[str, Any]], nonce: str | None = None) -> Any:
    from ai_agents.testing.verdict import Channel

    channel = Channel("/w", "tests")
    channel.data = bytearray(b"".join(json.dumps({"k": nonce or channel.nonce, **r}).encode() + b"\n"
                                      for r in lines))
    return channel


def test_judge_jest_rules():
    from ai_agents.testing.jest_verdict import judge_jest

    ok_case = {"t": "case", "file": "/w/tests/a.test.js", "ancestors": ["a"], "title": "x", "status": "passed"}
    end = {"t": "end", "failed": 0, "suites_failed": 0, "runtime_errors": 0}
    root, want = Path("/w"), ["tests/a.test.js::a > x"]
    assert judge_jest(channel_with([{"t": "start"}, ok_case, end]), 0, False, want, root).passed
    forged = channel_with([{"t": "start"}, ok_case, end], nonce="guessed")
    assert "nonce" in judge_jest(forged, 0, False, want, root).tampering[0]
    early = judge_jest(channel_with([{"t": "start"}, ok_case]), 0, False, want, root)  # process.exit(0)
    assert not early.passed and "before jest's run ended" in early.tampering[0]
    lying = judge_jest(channel_with([{"t": "start"}, {**ok_case, "status": "failed"}, end]), 0, False, want, root)
    assert not lying.passed and lying.tampering
    twice = judge_jest(channel_with([{"t": "start"}, ok_case, ok_case, end]), 0, False, want, root)
    assert not twice.passed and "reported twice" in twice.tampering[0]
    missing = judge_jest(channel_with([{"t": "start"}, ok_case, end]), 0, False, [*want, "tests/a.test.js::a > y"],
                         root)
    assert missing.outcome == "failed" and missing.failures[-1].test_name.endswith("a > y")
    after = judge_jest(channel_with([{"t": "start"}, ok_case, end, ok_case]), 0, False, want, root)
    assert not after.passed and "after the end record" in after.tampering[0]


def test_process_exit_zero_is_not_a_pass(project):
    result = run(project, "process.exit(0);\nexports.add = (a, b) => a + b;\n")
    assert not result.passed


def test_project_jest_config_and_reporters_are_ignored(project):
    # A jest.config.js that swaps the reporter and skips QA's tests has no effect: the daemon's config wins.
    (project / "jest.config.js").write_text("module.exports = { testMatch: ['**/nothing/**'], reporters: [] };\n")
    result = run(project, "exports.add = (a, b) => a - b;\n")
    assert result.outcome == "failed" and result.failed_count == 2


def test_a_missing_test_is_a_failure(project):
    (project / "tests" / "calc.test.js").write_text(
        "const { add } = require('../src/calc');\n"
        "describe('calc', () => {\n  test('adds', () => { expect(add(1, 2)).toBe(3); });\n"
        "  it('adds negatives', () => { expect(add(-1, -2)).toBe(-3); });\n});\n")
    (project / "src" / "calc.js").write_text("exports.add = (a, b) => a + b;\n")
    result = TestRunner(project, "jest", timeout=60).run_tests(
        expected=["tests/calc.test.js::calc > adds", "tests/calc.test.js::calc > multiplies"])
    assert result.outcome == "failed"
    assert any(f.test_name.endswith("multiplies") for f in result.failures)


def test_expected_ids_scanner():
    src = ("// test('in a comment')\n/* it('in a block') */\n"
           "describe('outer', () => {\n  describe(\"inner\", function () {\n"
           "    it(`a {brace}`, () => { const s = '}'; });\n  });\n  test('b', () => {});\n});\n"
           "test('top', () => {});\ntest.skip('skipped', () => {});\ntest(`dyn ${x}`, () => {});\n"
           "xit('also skipped', () => {});\n")
    ids, problems = expected_jest_ids("tests/x.test.js", src)
    assert ids == ["tests/x.test.js::outer > inner > a {brace}", "tests/x.test.js::outer > b",
                   "tests/x.test.js::top"]
    assert len(problems) == 3 and "test.skip" in problems[0] and "string literal" in problems[1]
    assert "xit" in problems[2]


def test_typescript_through_ts_jest(tmp_path, jest_modules):
    ws = tmp_path / "ts"
    (ws / "tests").mkdir(parents=True)
    (ws / "src").mkdir()
    jest_project(ws, jest_modules)
    test = ("import { describe, expect, test } from '@jest/globals';\nimport { add } from '../src/add';\n"
            "describe('add', () => {\n  test('adds numbers', () => { const n: number = add(1, 2); "
            "expect(n).toBe(3); });\n});\n")
    (ws / "tests" / "add.test.ts").write_text(test)
    expected = expected_jest_ids("tests/add.test.ts", test)[0]
    assert expected == ["tests/add.test.ts::add > adds numbers"]
    (ws / "src" / "add.ts").write_text("export function add(a: number, b: number): number { return a + b; }\n")
    assert TestRunner(ws, "jest", timeout=120).run_tests(expected=expected).passed
    # a type error is a failure: ts-jest type-checks, the code never runs
    (ws / "src" / "add.ts").write_text("export function add(a: number, b: number): string { return a + b; }\n")
    broken = TestRunner(ws, "jest", timeout=120).run_tests(expected=expected)
    assert broken.outcome == "failed" and any("TS2322" in f.traceback for f in broken.failures)


def test_jest_suite_paths_and_names_are_checked_before_anything_runs():
    from ai_agents.testing.suites import jest_suite_problems

    good = "test('works', () => {});\n"
    assert jest_suite_problems("tests/a.test.js", "src/a.js", good, "tests") == []
    assert jest_suite_problems("tests/a.test.ts", "src/a.ts", good, "tests") == []
    bad_paths = jest_suite_problems("src/a.test.js", "tests/a.js", good, "tests")
    assert any("test_path must be" in p for p in bad_paths) and any("module_path must be" in p for p in bad_paths)
    assert any("offset" in p for p in jest_suite_problems("tests/a.test.js", "a.js", "test.each([1])('x', f);\n",
                                                          "tests"))
    assert "no test()/it() call" in " ".join(jest_suite_problems("tests/a.test.js", "a.js", "// nothing\n", "tests"))
