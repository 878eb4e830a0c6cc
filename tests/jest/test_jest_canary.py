"""jest's canary: a test with a fresh random name in every test file, which must be reported failed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ai_agents.testing.jest_verdict import canary_source, expected_jest_ids, judge_jest
from ai_agents.testing.runner import TestRunner
from ai_agents.testing.verdict import Channel
from tests.jest.test_jest_pipeline import channel_with, project  # noqa: F401 - the fixture

PATCH_EXPECT = ("globalThis.expect = () => new Proxy({}, { get: () => () => undefined });\n"
                "exports.add = (a, b) => a - b;\n")


def records(channel: Any, canary_status: str | None, *, message: str | None = None) -> Any:
    case = {"t": "case", "file": "/w/tests/a.test.js", "ancestors": ["a"], "title": "x", "status": "passed"}
    lines: list[dict[str, Any]] = [{"t": "start"}]
    if canary_status is not None:
        lines.append({"t": "case", "file": "/w/tests/a.test.js", "ancestors": [], "title": channel.canary_name,
                      "status": canary_status, "message": channel.canary_nonce if message is None else message})
    lines += [case, {"t": "end", "failed": int(canary_status == "failed"), "suites_failed": 1, "runtime_errors": 0}]
    channel.data = channel_with(lines, nonce=channel.nonce).data
    return channel


def test_canary_rules_on_the_records():
    want, root = ["tests/a.test.js::a > x"], Path("/w")
    ok = judge_jest(records(Channel('/w', 'tests'), "failed"), 1, False, want, root, canary=True)
    assert ok.passed and ok.passed_count == 1 and ok.test_count == 1 and not ok.tampering  # the canary not counted
    green = judge_jest(records(Channel('/w', 'tests'), "passed"), 0, False, want, root, canary=True)
    assert not green.passed and "canary" in green.tampering[0] and "reported passed" in green.tampering[0]
    gone = judge_jest(records(Channel('/w', 'tests'), None), 0, False, want, root, canary=True)
    assert not gone.passed and "never reported" in gone.tampering[0]
    exit_zero = judge_jest(records(Channel('/w', 'tests'), "failed"), 0, False, want, root, canary=True)
    assert not exit_zero.passed and "status 0 although the daemon's canary failed" in exit_zero.tampering[0]
    silent = records(Channel('/w', 'tests'), "failed", message="failed somehow")
    no_nonce = judge_jest(silent, 1, False, want, root, canary=True)
    assert not no_nonce.passed and no_nonce.tampering


def test_canary_source_names_and_nonce():
    src = canary_source("canary_ab12", "n0nce")
    assert "test(\"canary_ab12\"" in src and "\"n0nce\"" in src
    assert expected_jest_ids("x.test.js", src)[0] == ["x.test.js::canary_ab12"]  # a plain, top-level test


def test_a_module_replacing_expect_is_caught_by_the_canary(project):  # noqa: F811
    (project / "src" / "calc.js").write_text(PATCH_EXPECT)
    expected = expected_jest_ids("tests/calc.test.js", (project / "tests" / "calc.test.js").read_text())[0]
    result = TestRunner(project, "jest", timeout=60).run_tests(expected=expected)
    # QA's two tests "pass" under the fake expect; the canary does too, and that is the tell
    assert not result.passed and result.outcome == "failed"
    assert any("canary" in t and "reported passed" in t for t in result.tampering), result.tampering
    assert result.failures[0].test_name == "test_tampering"
