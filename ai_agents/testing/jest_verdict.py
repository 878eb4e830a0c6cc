"""The daemon's verdict on a jest run, under the same rules as pytest's (see verdict.py).

- ``expected_jest_ids`` reads QA's ``*.test.js``/``*.test.ts`` file outside the sandbox: the
  names of its ``test()``/``it()`` calls inside their ``describe()`` blocks (string literals only;
  a name built at run time, ``test.each`` or ``.skip``/``.todo`` cannot be required and is
  reported as a problem). Every one must be reported run and passed.
- jest runs with the daemon's own ``--config`` (the project's jest config, setup files and
  reporters are not used) and the daemon's reporter (``jest_reporter.js``, bound read-only from
  outside the workspace). The reporter reads the run's nonce from a pipe and closes it before any
  test file loads, then streams one record per test over an inherited pipe: no file the tests could
  write is read, a record without the nonce is tampering.
- A canary test with a fresh random name is registered in every test file by a daemon setup file
  (``setupFilesAfterEnv``, written per run, read-only in the sandbox); it must be reported failed
  with the run's canary nonce. Code that makes every test pass (``expect`` replaced, ``test``
  wrapped in a try) turns it green: tampering. Its failure is the daemon's, not counted.

Residual risk, said plainly: the canary runs first in each file (before QA's tests, after the file's
top-level code), so a patch made later, or one that spares the test of the canary's name, goes
unseen by it. And jest runs the tests in the same OS process as the reporter (in band)
or in worker processes it forks; the code under test can open ``/proc/self/mem`` or ptrace its
parent to find the nonce and the descriptor, then write records of its choosing. bubblewrap, the
rlimits and the timeout contain what it can do to the machine, not what it can say about itself.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ai_agents.testing.result import TRACEBACK_CHARS, TestFailure, TestResult, tail
from ai_agents.testing.verdict import MAX_RECORD_BYTES, TAMPERING, Channel

REPORTER_SOURCE = Path(__file__).with_name("jest_reporter.js")
JEST_TEST_FILE = re.compile(r"[A-Za-z0-9_.-]+\.test\.(js|ts|cjs|mjs)")
_CALLS = ("describe", "test", "it")
_SKIPPING = ("xdescribe", "xtest", "xit", "fdescribe", "fit")
_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z_$][A-Za-z0-9_$]*)*")
_STRING_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "`": "`"}


def is_jest_file(path: str) -> bool:
    return bool(JEST_TEST_FILE.fullmatch(path.rsplit("/", 1)[-1]))


def _string_at(src: str, i: int) -> tuple[str | None, int]:
    """(the literal's value or None if not a plain literal, index after it) for a quote at ``i``."""
    quote, j, out = src[i], i + 1, []
    while j < len(src):
        c = src[j]
        if c == "\\" and j + 1 < len(src):
            out.append(_STRING_ESCAPES.get(src[j + 1], src[j + 1]))
            j += 2
            continue
        if c == quote:
            return "".join(out), j + 1
        if quote == "`" and c == "$" and src[j + 1:j + 2] == "{":
            # A template with a substitution: its value is only known at run time.
            end = src.find("`", j)
            return None, (end + 1 if end >= 0 else len(src))
        if c == "\n" and quote != "`":
            return None, j
        out.append(c)
        j += 1
    return None, j


def expected_jest_ids(test_path: str, source: str) -> tuple[list[str], list[str]]:
    """(ids ``path::describe > name``, problems) of the tests ``source`` defines.

    A small scanner, not a JavaScript parser: comments and strings are skipped, braces and
    parentheses counted, and ``describe``/``test``/``it`` calls whose first argument is a plain
    string literal give the names. Anything it cannot name for sure is a problem (QA is sent back).
    """
    ids: list[str] = []
    problems: list[str] = []
    stack: list[tuple[str, int]] = []  # (describe name, depth of its body)
    pending: str | None = None  # a describe whose body has not opened yet
    depth, i, n = 0, 0, len(source)
    while i < n:
        c = source[i]
        if source.startswith("//", i):
            i = source.find("\n", i)
            i = n if i < 0 else i
            continue
        if source.startswith("/*", i):
            end = source.find("*/", i + 2)
            i = n if end < 0 else end + 2
            continue
        if c in "'\"`":
            _, i = _string_at(source, i)
            continue
        if c in "{(":
            depth += 1
            if c == "{" and pending is not None:
                stack.append((pending, depth))
                pending = None
            i += 1
            continue
        if c in "})":
            while stack and stack[-1][1] >= depth and c == "}":
                stack.pop()
            depth -= 1
            i += 1
            continue
        if (m := _IDENT.match(source, i)) and (i == 0 or not (source[i - 1].isalnum() or source[i - 1] in "_$.")):
            name = m.group(0)
            head, _, modifier = name.partition(".")
            j = m.end()
            while j < n and source[j] in " \t\r\n":
                j += 1
            if head in _SKIPPING and j < n and source[j] == "(":
                problems.append(f"{name}(...) at offset {i}: skipped or focused tests cannot be required")
            elif head in _CALLS and j < n and source[j] == "(":
                k = j + 1
                while k < n and source[k] in " \t\r\n":
                    k += 1
                title, _ = _string_at(source, k) if k < n and source[k] in "'\"`" else (None, k)
                if modifier:  # .skip, .todo, .only, .each, .concurrent, .failing: nothing a plain name can require
                    problems.append(f"{name}(...) at offset {i}: only plain describe/test/it calls can be required")
                elif title is None:
                    problems.append(f"{name}(...) at offset {i}: its name must be a plain string literal")
                elif head == "describe":
                    pending = title
                else:
                    ids.append(f"{test_path}::" + " > ".join([*(s[0] for s in stack), title]))
            i = m.end()
            continue
        i += 1
    return list(dict.fromkeys(ids)), problems


def canary_source(name: str, nonce: str) -> str:
    """The daemon's setup file: one canary test per test file, which must fail with ``nonce``."""
    return ("'use strict';\n// The ai-agents daemon's canary: it must fail. See ai_agents/testing/jest_verdict.py.\n"
            f"test({json.dumps(name)}, () => {{ expect({json.dumps(nonce)}).toBe('the canary must fail'); }});\n")


def jest_config(workspace: Path, tests_dir: str, reporter: Path, cache: Path, ts_jest: bool,
                canary: Path | None = None) -> str:
    """The daemon's ``--config`` for a run: the project's own jest config is not read; ``canary``: the
    daemon's setup file (the only one run)."""
    config: dict[str, Any] = {
        "rootDir": str(workspace),
        "roots": [str(workspace)],
        "testMatch": [f"<rootDir>/{tests_dir.strip('/')}/**/*.test.{{js,ts,cjs,mjs}}"],
        "testPathIgnorePatterns": ["/node_modules/"],
        "testEnvironment": "node",
        "reporters": [str(reporter)],
        "cacheDirectory": str(cache),
        "watchman": False,
        "setupFiles": [],
        "setupFilesAfterEnv": [str(canary)] if canary is not None else [],
        "globalSetup": None,
        "globalTeardown": None,
    }
    if ts_jest:
        config["transform"] = {"^.+\\.ts$": "ts-jest"}
    return json.dumps(config)


def judge_jest(channel: Channel, rc: int, timed_out: bool, expected: Sequence[str] | None,
               root: Path, canary: bool = False) -> TestResult:
    """The outcome of one jest run from the reporter's records and the exit status the daemon saw.

    ``canary``: the run had the daemon's canary setup file (``channel.canary_name``/``canary_nonce``):
    each file that reported tests must report it failed with the nonce; jest then exits 1."""
    result = TestResult(outcome="passed", framework="jest")
    tampering: list[str] = []
    outcomes: dict[str, str] = {}
    files_with_cases: set[str] = set()
    canaries: dict[str, bool] = {}  # file -> failed with the nonce
    started = ended = False
    end: dict[str, Any] = {}
    lines = bytes(channel.data).split(b"\n")
    if channel.overflow:
        tampering.append("the report channel carried too much data")
    if lines and lines[-1]:
        tampering.append("the report channel ended in the middle of a record")
    for raw in lines[:-1]:
        try:
            record = json.loads(raw) if len(raw) <= MAX_RECORD_BYTES else None
        except (ValueError, RecursionError):
            record = None
        if not isinstance(record, dict) or not secrets.compare_digest(str(record.get("k", "")), channel.nonce):
            tampering.append("a record on the report channel lacks the run's nonce (written by someone else)")
            break
        if ended:
            tampering.append("a record arrived after the end record")
            break
        kind = record.get("t")
        if kind == "start":
            started = True
        elif kind == "end":
            ended, end = True, record
        elif kind == "suite_error":
            result.errors += 1
            message = str(record.get("message") or "the test file failed to run")
            result.failures.append(TestFailure(test_name=_rel(str(record.get("file")), root),
                                               error_message=(message.strip().splitlines() or ["failed"])[0][:1000],
                                               traceback=tail(message, TRACEBACK_CHARS)))
        elif kind == "case" and canary and not record.get("ancestors") and record.get("title") == channel.canary_name:
            file = _rel(str(record.get("file")), root)
            if file in canaries:
                tampering.append(f"{file}: the daemon's canary reported twice")
            canaries[file] = (record.get("status") == "failed"
                              and channel.canary_nonce in str(record.get("message") or ""))
            if not canaries[file]:
                tampering.append(f"{file}: the daemon's canary test (which must fail) was reported "
                                 f"{record.get('status')}: something made every test pass")
        elif kind == "case":
            files_with_cases.add(_rel(str(record.get("file")), root))
            node = _rel(str(record.get("file")), root) + "::" + " > ".join(
                [*(str(a) for a in record.get("ancestors") or []), str(record.get("title"))])
            if node in outcomes:
                tampering.append(f"{node}: reported twice")
                continue
            status = str(record.get("status"))
            outcomes[node] = status
            result.test_count += 1
            if status == "passed":
                result.passed_count += 1
            elif status == "failed":
                result.failed_count += 1
                message = str(record.get("message") or "failed")
                result.failures.append(TestFailure(test_name=node, error_message=(message.strip().splitlines()
                                                                                   or ["failed"])[0][:1000],
                                                   traceback=tail(message, TRACEBACK_CHARS)))
            else:
                result.skipped += 1
    missing = []
    if not (timed_out or rc < 0):
        for want in expected or []:
            got = outcomes.get(want)
            if got is None:
                missing.append(want)
                result.failures.append(TestFailure(test_name=want, error_message="this test of QA's file was not "
                                                   "run to the end (not collected, renamed or its run was cut short)"))
            elif got != "passed" and not any(f.test_name == want for f in result.failures):
                result.failed_count += 1
                result.failures.append(TestFailure(test_name=want, error_message=f"{got}: every test of QA's file "
                                                   "must run and pass"))
    if canary and ended:
        for file in sorted(files_with_cases - set(canaries)):
            tampering.append(f"{file}: the daemon's canary test never reported, though the file's tests ran")
    failed_canaries = sum(canaries.values())
    success = not ((_int(end.get("failed")) - failed_canaries) or end.get("runtime_errors")
                   or (not canary and end.get("suites_failed")))
    if ended and rc == 0 and failed_canaries:
        tampering.append("jest exited with status 0 although the daemon's canary failed")
    elif ended and rc == 0 and (not success or result.failed_count):
        tampering.append("jest exited with status 0 although its run failed")
    if not ended and rc == 0 and not timed_out:
        tampering.append("the test process exited with status 0 before jest's run ended (process.exit?)")
    normal_rc = 1 if failed_canaries else 0  # the canary's failure makes jest exit 1
    if ended and rc > normal_rc and success and not result.failures and result.passed_count:
        tampering.append(f"jest reported success but exited with status {rc}")
    result.tampering = list(dict.fromkeys(tampering))
    if result.tampering:
        result.outcome = "failed"
        result.failures.insert(0, TestFailure(test_name=TAMPERING, error_message="; ".join(result.tampering)[:2000]))
    elif timed_out:
        result.outcome = "timeout"
    elif not started:
        result.outcome = "could_not_run"
    elif rc < 0 or not ended:
        result.outcome = "failed"
        result.failures.insert(0, TestFailure(test_name="test process", error_message=(
            f"the test process ended (status {rc}) before jest's run finished")))
    elif result.failures or result.failed_count or result.errors:
        result.outcome = "failed"
    elif result.passed_count == 0:
        result.outcome = "no_tests"
    elif missing or rc != normal_rc:
        result.outcome = "failed"
    return result


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _rel(file: str, root: Path) -> str:
    prefix = str(root) + "/"
    return file[len(prefix):] if file.startswith(prefix) else file
