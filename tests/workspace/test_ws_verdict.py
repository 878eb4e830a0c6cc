"""The daemon's verdict on pytest runs, attacked by the code under test (real pytest subprocesses).

Each attack is a textutils.py whose slugify is wrong (one of QA's tests must fail) plus a way to
make the run look green. None may pass; the ones that touch the verdict are test_tampering.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from ai_agents.errors import TestRunError, WorkspaceError
from ai_agents.file_system.code_parse import check_python_syntax, parse_source
from ai_agents.testing import TestRunner, parse_test_results
from ai_agents.testing.tamper_check import tampering_reasons
from ai_agents.testing.verdict import Channel, expected_test_ids, judge

TESTS = """\
import pytest

from textutils import slugify


def test_lowercases_and_joins_words():
    assert slugify("Hello World") == "hello-world"


def test_drops_punctuation():
    assert slugify("Hello, World!") == "hello-world"


@pytest.mark.parametrize("blank", ["", "   "])
def test_rejects_empty_input(blank):
    with pytest.raises(ValueError):
        slugify(blank)


class TestSpaces:
    def test_collapses_spaces(self):
        assert slugify("  many   spaces ") == "many-spaces"
"""
EXPECTED = expected_test_ids("tests/test_textutils.py", TESTS)
BUGGY = '''
def slugify(text):
    words = text.lower().split()
    if not words:
        raise ValueError("empty")
    return "-".join(words)  # keeps punctuation: test_drops_punctuation fails
'''
FIXED = BUGGY.replace('text.lower().split()', '"".join(c for c in text.lower() if c.isalnum() or c == " ").split()')

# name -> (code added to textutils.py, expected: "tampering" or "failed")
ATTACKS: dict[str, tuple[str, str]] = {
    "runtest_replaced": ("import _pytest.python\n_pytest.python.Function.runtest = lambda self: None\n", "tampering"),
    "report_forged": ('''
from _pytest.reports import TestReport
_orig = TestReport.from_item_and_call.__func__
def _forged(cls, item, call):
    rep = _orig(cls, item, call)
    rep.outcome, rep.longrepr = "passed", None
    return rep
TestReport.from_item_and_call = classmethod(_forged)
''', "tampering"),
    "report_forged_during_a_test": ('''
def _patch():
    from _pytest.reports import TestReport
    orig = TestReport.from_item_and_call.__func__
    def forged(cls, item, call):
        rep = orig(cls, item, call)
        rep.outcome, rep.longrepr = "passed", None
        return rep
    TestReport.from_item_and_call = classmethod(forged)
_real = slugify
def slugify(text):
    _patch()
    return _real(text)
''', "tampering"),
    "callinfo_swallows_exceptions": ('''
from _pytest.runner import CallInfo
_orig = CallInfo.from_call.__func__
def _swallow(func):
    def run():
        try:
            return func()
        except Exception:
            return None
    return run
CallInfo.from_call = classmethod(lambda cls, func, when, reraise=None: _orig(cls, _swallow(func), when, reraise))
''', "tampering"),
    "only_some_tests": ('''
import _pytest.python
_orig = _pytest.python.Function.runtest
def _runtest(self):
    if self.name == "test_drops_punctuation":
        return None
    return _orig(self)
_pytest.python.Function.runtest = _runtest
''', "tampering"),
    "obfuscated_import": ('''
_m = __import__("_py" + "test")
getattr(getattr(_m, "py" + "thon"), "Func" + "tion").runtest = lambda self: None
''', "tampering"),
    "code_object_swapped": ('''
import _pytest.python
_pytest.python.Function.runtest.__code__ = (lambda self: None).__code__
''', "tampering"),
    "exit_zero_with_forged_junit": ('''
import os, sys
_real = slugify
def slugify(text):
    for arg in sys.argv:
        if arg.startswith("--junitxml="):
            open(arg.split("=", 1)[1], "w").write('<testsuites><testsuite tests="5"/></testsuites>')
    os._exit(0)
''', "tampering"),
    "pytest_exit_zero": ('''
import pytest
def slugify(text):
    pytest.exit("all good", returncode=0)
''', "tampering"),
    "atexit_rewrites_results": ('''
import atexit, os
def _forge():
    for fd in range(3, 256):
        try:
            os.write(fd, b'{"t": "end", "rc": 0}\\n')
        except OSError:
            pass
    os._exit(0)
atexit.register(_forge)
''', "failed"),
    "channel_flooded_with_forged_records": ('''
import os, json
_real = slugify
def slugify(text):
    line = json.dumps({"t": "report", "id": "tests/test_textutils.py::test_drops_punctuation", "when": "call",
                       "outcome": "passed"}).encode() + b"\\n"
    for fd in range(3, 4096):
        try:
            os.write(fd, line)
        except OSError:
            pass
    return _real(text)
''', "tampering"),
    "deeply_nested_record": ('''
import os
_real = slugify
def slugify(text):
    deep = b"[" * 200000 + b"]" * 200000 + b"\\n"
    for fd in range(3, 4096):
        try:
            os.write(fd, deep)
        except OSError:
            pass
    return _real(text)
''', "tampering"),
    "frame_walk": ('''
import sys
_real = slugify
def slugify(text):
    frame = sys._getframe(1)
    while frame is not None and "item" not in frame.f_locals:
        frame = frame.f_back
    return _real(text)
''', "tampering"),
    "frame_walk_via_inspect_and_traceback": ('''
import inspect
_real = slugify
def slugify(text):
    try:
        raise KeyError
    except KeyError as e:
        e.__traceback__.tb_frame
    return _real(text)
''', "tampering"),
    "gc_walk": ('''
import gc
_real = slugify
def slugify(text):
    [o for o in gc.get_objects() if type(o).__name__ == "TestReport"]
    return _real(text)
''', "tampering"),
    "proc_fd_listing": ('''
import os
_real = slugify
def slugify(text):
    os.listdir("/proc/self/fd")
    return _real(text)
''', "tampering"),
    "ctypes_memory_read": ('''
import ctypes
_real = slugify
def slugify(text):
    ctypes.string_at(id(text), 8)
    return _real(text)
''', "tampering"),
    "tracing_hook": ('''
import sys
sys.settrace(lambda *a: None)
''', "tampering"),
    "skips_instead_of_failing": ('''
import pytest
_real = slugify
def slugify(text):
    if "," in text:
        pytest.skip("not today")
    return _real(text)
''', "failed"),
}


def make(root: Path, module: str, extra: dict[str, str] | None = None) -> Path:
    files = {"textutils.py": module, "tests/test_textutils.py": TESTS, **(extra or {})}
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def run(root: Path) -> object:
    return TestRunner(root, timeout=60).run_tests(expected=EXPECTED)


def test_expected_ids_follow_pytest_rules() -> None:
    assert EXPECTED == ["tests/test_textutils.py::test_lowercases_and_joins_words",
                        "tests/test_textutils.py::test_drops_punctuation",
                        "tests/test_textutils.py::test_rejects_empty_input",
                        "tests/test_textutils.py::TestSpaces::test_collapses_spaces"]
    source = "class TestInit:\n    def __init__(self): pass\n    def test_x(self): pass\n" \
             "def helper(): pass\nclass TestOuter:\n    class TestInner:\n        def test_y(self): pass\n"
    assert expected_test_ids("tests/test_a.py", source) == ["tests/test_a.py::TestOuter::TestInner::test_y"]
    assert expected_test_ids("tests/test_a.py", "x = (" * 300000) == []


@pytest.mark.parametrize("sandbox", ["auto", "none"])
def test_an_honest_run_passes_and_the_canary_stays_out_of_sight(workspace: Path, sandbox: str) -> None:
    result = TestRunner(make(workspace, FIXED), timeout=60, sandbox=sandbox).run_tests(expected=EXPECTED)
    assert (result.outcome, result.passed_count, result.failed_count, result.tampering) == ("passed", 5, 0, [])
    assert "5 passed" in result.output_tail and "failed" not in result.output_tail
    assert "canary" not in result.output_tail


def test_an_honest_failure_is_a_plain_failure(workspace: Path) -> None:
    result = run(make(workspace, BUGGY))
    assert (result.outcome, result.passed_count, result.failed_count, result.tampering) == ("failed", 4, 1, [])
    assert [f.test_name for f in result.failures] == ["tests/test_textutils.py::test_drops_punctuation"]
    assert "1 failed, 4 passed" in result.output_tail


def test_a_missing_expected_test_is_a_failure(workspace: Path) -> None:
    result = TestRunner(make(workspace, FIXED), timeout=60).run_tests(
        expected=[*EXPECTED, "tests/test_textutils.py::test_qa_wrote_but_never_ran"])
    assert result.outcome == "failed" and not result.tampering
    assert any(f.test_name.endswith("test_qa_wrote_but_never_ran") for f in result.failures)


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_on_the_verdict(workspace: Path, name: str) -> None:
    code, expected = ATTACKS[name]
    result = run(make(workspace, BUGGY + textwrap.dedent(code)))
    assert not result.passed, result.model_dump_json()
    if expected == "tampering":
        assert result.tampering, result.model_dump_json()
        assert result.failures[0].test_name == "test_tampering"
    else:
        assert result.outcome == "failed" and not result.tampering, result.model_dump_json()


def commit_all(workspace: Path) -> None:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-C", str(workspace)]
    subprocess.run([*git, "init", "-q"], check=True)
    (workspace / ".gitignore").write_text("*.egg-info/\n")
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)


def test_a_file_the_run_writes_under_tests_is_not_qas(workspace: Path) -> None:
    walker = "import sys\n\ndef walk():\n    return sys._getframe(1)\n"
    attack = f'''
import pathlib
_real = slugify
def slugify(text):
    pathlib.Path("tests/walker_helper.py").write_text({walker!r})
    from tests import walker_helper
    walker_helper.walk()
    return _real(text)
'''
    make(workspace, BUGGY + attack, {"tests/__init__.py": ""})
    commit_all(workspace)
    result = run(workspace)
    assert not result.passed
    assert any("sys._getframe" in t for t in result.tampering), result.tampering


def test_a_conftest_planted_in_an_ignored_directory_is_tampering(workspace: Path) -> None:
    make(workspace, BUGGY)
    commit_all(workspace)
    make(workspace, BUGGY, {"evil.egg-info/conftest.py": '''
import pytest

@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    rep.outcome, rep.longrepr = "passed", None
    return rep
'''})
    result = run(workspace)
    assert not result.passed
    assert any("evil.egg-info/conftest.py" in t for t in result.tampering), result.tampering


def records(channel: Channel, *rows: dict[str, object]) -> Channel:
    channel.data += b"".join(json.dumps({"k": channel.nonce, **r}).encode() + b"\n" for r in rows)
    return channel


def honest(channel: Channel, outcome: str = "passed", raised: bool = False) -> list[dict[str, object]]:
    test, canary = "tests/t.py::test_a", f"tests/t.py::{channel.canary_name}"
    return [{"t": "start"}, {"t": "collected", "ids": [test, canary]},
            {"t": "call", "id": test, "raised": raised, "exc": "", "fn": True},
            {"t": "pyfunc", "id": test, "raised": raised, "exc": ""},
            {"t": "report", "id": test, "when": "call", "outcome": outcome, "longrepr": ""},
            {"t": "call", "id": canary, "raised": True, "exc": "AssertionError", "fn": True},
            {"t": "pyfunc", "id": canary, "raised": True, "exc": "AssertionError"},
            {"t": "report", "id": canary, "when": "call", "outcome": "failed", "longrepr": channel.canary_nonce},
            {"t": "finish", "exitstatus": 1}, {"t": "end", "rc": 1}]


@pytest.mark.parametrize(("change", "rc", "verdict"), [
    ("none", 1, "passed"),
    ("the test failed", 1, "failed"),
    ("canary passed", 1, "tampering"),
    ("report contradicts the call", 1, "tampering"),
    ("report sent twice", 1, "tampering"),
    ("no end record, exit 0", 0, "tampering"),
    ("no end record, exit 1", 1, "failed"),
    ("exit status differs", 0, "tampering"),
    ("expected test missing", 1, "failed"),
    ("killed by a signal", -9, "failed"),
])
def test_judge(change: str, rc: int, verdict: str) -> None:
    channel = Channel("/ws", "tests")
    rows = honest(channel)
    expected = ["tests/t.py::test_a"]
    if change == "the test failed":
        rows = honest(channel, "failed", raised=True)
    elif change == "canary passed":
        rows[7] = {**rows[7], "outcome": "passed"}
    elif change == "report contradicts the call":
        rows[2] = {**rows[2], "raised": True}
    elif change == "report sent twice":
        rows.insert(5, rows[4])
    elif change.startswith("no end record"):
        rows = rows[:-2]
    elif change == "expected test missing":
        expected.append("tests/t.py::test_b")
    elif change == "killed by a signal":
        rows = rows[:4]
    result = judge(records(channel, *rows), rc, False, expected)
    if verdict == "tampering":
        assert result.tampering and result.outcome == "failed" and result.failures[0].test_name == "test_tampering"
    else:
        assert (result.outcome, result.tampering) == (verdict, []), result.model_dump_json()


def test_judge_refuses_records_without_the_nonce_and_reports_after_the_end() -> None:
    channel = Channel("/ws", "tests")
    good = {"k": channel.nonce}
    lines = [{**good, "t": "start"}, {**good, "t": "end", "rc": 1}, {**good, "t": "finish", "exitstatus": 0},
             {"t": "report", "id": "x", "when": "call", "outcome": "passed"}]
    channel.data += b"".join(json.dumps(x).encode() + b"\n" for x in lines)
    result = judge(channel, 1, False, [])
    assert result.outcome == "failed"
    assert any("after the end" in t for t in result.tampering)
    assert any("nonce" in t for t in result.tampering)


def test_static_check_names_the_reasons() -> None:
    assert tampering_reasons("textutils.py", FIXED) == []
    ordinary = "import logging, re, json\nfrom dataclasses import dataclass\n\n@dataclass\nclass P:\n    x: int\n\n" \
               "def f(self, name, value):\n    setattr(self, 'x', value)\n    return getattr(self, name)\n"
    assert tampering_reasons("ordinary.py", ordinary) == []
    found = tampering_reasons("textutils.py", ATTACKS["obfuscated_import"][0])
    assert any("__import__" in r for r in found)
    assert any("os._exit" in r for r in tampering_reasons("m.py", "import os\nos._exit(0)\n"))
    assert any("'runtest'" in r for r in tampering_reasons("m.py", "x.runtest = None\n"))
    assert any("pytest hook" in r for r in tampering_reasons("m.py", "def pytest_runtest_makereport(): pass\n"))
    assert tampering_reasons("notes.md", "import _pytest") == []
    assert tampering_reasons("m.py", "x = (" * 300000) == []  # unparseable: the write refuses it


def test_junit_and_jest_parsers_refuse_deep_nesting() -> None:
    deep_xml = "<testsuites>" + "<a>" * 100_000 + "</a>" * 100_000 + "</testsuites>"
    with pytest.raises(TestRunError):
        parse_test_results(deep_xml, "pytest")
    with pytest.raises(TestRunError):
        parse_test_results("[" * 100_000 + "]" * 100_000, "jest")


def test_code_parse_refuses_one_too_deep_file_with_a_reason() -> None:
    for source in ("x = 1" + "+1" * 100_000, "x = " + "-" * 200_000 + "1"):
        for check in (lambda s: check_python_syntax(s, "deep.py"), lambda s: parse_source(s, "deep.py")):
            with pytest.raises(WorkspaceError, match=r"deep.py: refused, (nested too deeply|too large)"):
                check(source)
