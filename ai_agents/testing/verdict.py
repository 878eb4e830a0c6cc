"""The daemon's verdict on a pytest run: decided here, from records the test process cannot forge.

The test process is untrusted (it imports the Developer's code), so nothing it leaves
behind decides the outcome: not its exit status, not a report file. Instead:

- ``expected_test_ids`` reads QA's test file with ``ast``, outside the sandbox: every test
  it defines must be reported, executed and passed.
- ``Channel`` hands the test process two pipes: one carrying its configuration (read
  and closed before any workspace code runs) and one for the records of
  ``pytest_boot.py``'s plugin, streamed as tests run. Nothing else reaches the daemon.
- A canary test with a fresh random name and nonce is injected into every run and
  must be reported failed with its nonce: "everything passes" tampering turns it green.
- ``judge`` checks the records against each other (each call observed raising or not,
  one report per phase, the end record last, the exit status the daemon saw) and turns
  any inconsistency, unauthenticated line or audit-hook refusal into ``test_tampering``.
"""

from __future__ import annotations

import ast
import json
import os
import re
import secrets
import select
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ai_agents.testing.result import TRACEBACK_CHARS, TestFailure, TestResult, tail

MAX_CHANNEL_BYTES = 20 * 1024 * 1024
MAX_RECORD_BYTES = 64 * 1024
TAMPERING = "test_tampering"
BOOT_SOURCE = Path(__file__).with_name("pytest_boot.py")
_PARAMS = re.compile(r"\[.*\]$", re.S)
_SUMMARY = re.compile(r"\b(\d+) failed(?=.* in [\d.]+s)")


def expected_test_ids(test_path: str, source: str) -> list[str]:
    """The node ids (``tests/test_x.py::TestCls::test_y``) pytest would collect from ``source``.

    pytest's default rules: functions named ``test*`` at module level, and in classes named
    ``Test*`` without ``__init__`` (nested too). Parametrized ids count by their base name.
    Unparseable source (or one nested too deep) gives an empty list: nothing to require.
    """
    try:
        tree = ast.parse(source, filename=test_path)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return []
    found: list[str] = []

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
                found.append(f"{prefix}::{node.name}")
            elif isinstance(node, ast.ClassDef) and node.name.startswith("Test") and not any(
                    isinstance(n, ast.FunctionDef) and n.name == "__init__" for n in node.body):
                visit(node.body, f"{prefix}::{node.name}")

    visit(tree.body, test_path)
    return list(dict.fromkeys(found))


def base_id(node_id: str) -> str:
    """``tests/t.py::test_x[a-b]`` -> ``tests/t.py::test_x``."""
    return _PARAMS.sub("", node_id)


@dataclass
class Channel:
    """The two pipes of one run and the thread draining the report pipe."""

    workspace: str
    tests_dir: str
    plugins: list[str] | None = None  # conftest.py files allowed to load (git-tracked); None: any conftest.py
    trusted: list[str] | None = None  # QA's files (tracked under tests/); None: anything under tests/
    extra_paths: list[str] = field(default_factory=list)  # put first on sys.path (site_view.py's views)
    hide_paths: list[str] = field(default_factory=list)   # taken off sys.path (the daemon's site-packages)
    nonce: str = field(default_factory=lambda: secrets.token_hex(16))
    canary_name: str = field(default_factory=lambda: f"test_{secrets.token_hex(6)}")
    canary_nonce: str = field(default_factory=lambda: secrets.token_hex(16))
    data: bytearray = field(default_factory=bytearray)
    overflow: bool = False
    _read: int = -1
    _write: int = -1
    _ctl: int = -1
    _ctl_write: int = -1
    _child_write: int = -1
    _thread: threading.Thread | None = None

    def open(self, *, hold: bool = False) -> tuple[int, ...]:
        """Create the pipes; returns the descriptors the child must inherit. ``hold``: the configuration
        is sent later (:meth:`send`), when the run is asked for (a process started ahead waits for it)."""
        self._read, self._write = os.pipe()
        self._ctl, self._ctl_write = os.pipe()
        self._thread = threading.Thread(target=self._drain, name="test-verdict-reader", daemon=True)
        self._thread.start()
        if not hold:
            self.send()
        return self._ctl, self._write

    def send(self, args: Sequence[str] = ()) -> None:
        """The run's configuration (``args``: pytest's, the run's test paths), fed to the child once."""
        config = {"report_fd": self._write_no, "nonce": self.nonce, "canary": self.canary_name,
                  "canary_nonce": self.canary_nonce, "workspace": self.workspace, "tests_dir": self.tests_dir,
                  "plugins": self.plugins, "trusted": self.trusted, "extra_paths": self.extra_paths,
                  "hide_paths": self.hide_paths, "args": list(args)}
        fd, self._ctl_write = self._ctl_write, -1
        # Fed by a thread: with many tracked files it may not fit the pipe's buffer before the child reads.
        threading.Thread(target=self._feed, args=(fd, json.dumps(config).encode()),
                         name="test-verdict-config", daemon=True).start()

    @staticmethod
    def _feed(fd: int, data: bytes) -> None:
        try:
            while data:
                data = data[os.write(fd, data):]
        except OSError:
            pass  # the child is gone before reading it all: its run fails without its configuration
        finally:
            os.close(fd)

    @property
    def env(self) -> dict[str, str]:
        return {"AI_AGENTS_VERDICT_FD": str(self._ctl)}

    @property
    def _write_no(self) -> int:
        """The report pipe's write end as the child numbers it (inherited under the same number)."""
        return self._write if self._write >= 0 else self._child_write

    def started(self) -> None:
        """The child has its copies: close ours, so the pipe ends when the child's do."""
        if self._write >= 0:
            self._child_write = self._write
        for fd in (self._ctl, self._write):
            if fd >= 0:
                os.close(fd)
        self._ctl = self._write = -1

    def _drain(self) -> None:
        while True:
            try:
                ready, _, _ = select.select([self._read], [], [], 0.5)
            except (OSError, ValueError):
                return
            if not ready:
                if self._read < 0:
                    return
                continue
            try:
                chunk = os.read(self._read, 65536)
            except OSError:
                return
            if not chunk:
                return
            if len(self.data) + len(chunk) > MAX_CHANNEL_BYTES:
                self.overflow = True  # keep draining so the writer never blocks, keep nothing more
            else:
                self.data += chunk

    def scrub(self, output: str) -> str:
        """The console output without the canary's lines (its nonce is no use to anyone, but noise)."""
        marks = (self.canary_name, self.canary_nonce, "in canary")
        lines = [ln for ln in output.splitlines() if not any(m in ln for m in marks)]
        for i in range(len(lines) - 1, -1, -1):
            if (found := _SUMMARY.search(lines[i])) and self.canary_nonce in output:
                left = int(found.group(1)) - 1
                lines[i] = _SUMMARY.sub(f"{left} failed" if left else "", lines[i], count=1).replace(" , ", " ")
                lines[i] = lines[i].lstrip(", ").replace("= , ", "= ")
                break
        return "\n".join(lines)

    def close(self, wait: float = 5.0) -> None:
        """After the process group is gone: wait for the pipe's end, then close everything (a configuration
        never sent is never sent: a child still waiting for it reads its end and leaves)."""
        self.started()
        if self._ctl_write >= 0:
            fd, self._ctl_write = self._ctl_write, -1
            os.close(fd)
        if self._thread is not None:
            self._thread.join(wait)
        if self._read >= 0:
            fd, self._read = self._read, -1
            os.close(fd)
        if self._thread is not None:
            self._thread.join(1.0)


@dataclass
class _Seen:
    """The records, sorted by kind, and every inconsistency found while reading them."""

    tampering: list[str] = field(default_factory=list)
    collected: list[str] | None = None
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    pyfuncs: dict[str, dict[str, Any]] = field(default_factory=dict)
    reports: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    collect_errors: list[dict[str, Any]] = field(default_factory=list)
    finish: int | None = None
    end: int | None = None
    started: bool = False


def _read_records(channel: Channel) -> _Seen:
    seen = _Seen()
    if channel.overflow:
        seen.tampering.append(f"the report channel carried over {MAX_CHANNEL_BYTES} bytes")
    lines = bytes(channel.data).split(b"\n")
    if lines and lines[-1]:
        seen.tampering.append("the report channel ended in the middle of a record")
    for raw in lines[:-1]:
        problem = _take(raw, channel, seen)
        if problem:
            seen.tampering.append(problem)
            if len(seen.tampering) > 20:
                break
    return seen


def _take(raw: bytes, channel: Channel, seen: _Seen) -> str | None:
    if len(raw) > MAX_RECORD_BYTES:
        return "a record on the report channel is too large"
    try:
        record = json.loads(raw)
    except (ValueError, RecursionError):
        return "a record on the report channel is not the reporter's JSON"
    if not isinstance(record, dict) or not secrets.compare_digest(str(record.get("k", "")), channel.nonce):
        return "a record on the report channel lacks the run's nonce (written by someone else)"
    if seen.end is not None:
        return "a record arrived after the end record"
    kind, node = record.get("t"), str(record.get("id", ""))
    if kind == "tamper":
        return f"refused inside the test process: {str(record.get('why'))[:300]}"
    if kind == "start":
        seen.started = True
    elif kind == "collected":
        if seen.collected is not None:
            return "collection was reported twice"
        seen.collected = [str(i) for i in record.get("ids") or []]
    elif kind in ("call", "pyfunc"):
        target = seen.calls if kind == "call" else seen.pyfuncs
        if node in target:
            return f"{node}: its {kind} was reported twice"
        target[node] = record
    elif kind == "report":
        key = (node, str(record.get("when")))
        if key in seen.reports:
            return f"{node}: its {key[1]} report was sent twice"
        seen.reports[key] = record
    elif kind == "collect_error":
        seen.collect_errors.append(record)
    elif kind == "finish":
        seen.finish = int(record.get("exitstatus", -1))
    elif kind == "end":
        seen.end = int(record.get("rc", -1))
    elif kind != "crash":
        return f"unknown record kind {kind!r}"
    return None


def _consistency(seen: _Seen, channel: Channel) -> None:
    """Reports that contradict what the reporter saw happen."""
    for (node, when), report in seen.reports.items():
        if when != "call":
            continue
        call, outcome = seen.calls.get(node), report.get("outcome")
        if outcome == "passed" and (call is None or call.get("raised")):
            seen.tampering.append(f"{node}: reported passed although its call "
                                  + ("raised " + str(call.get("exc")) if call else "was never observed"))
        if call and call.get("fn") and outcome == "passed":
            pyfunc = seen.pyfuncs.get(node)
            if pyfunc is None or pyfunc.get("raised"):
                seen.tampering.append(f"{node}: reported passed although the test function "
                                      + ("raised " + str(pyfunc.get("exc")) if pyfunc else "never ran"))
    canary = [n for n in seen.collected or [] if n.rsplit("::", 1)[-1] == channel.canary_name]
    if canary:
        canary_report = seen.reports.get((canary[0], "call"))
        if canary_report is not None and (canary_report.get("outcome") != "failed"
                                          or channel.canary_nonce not in str(canary_report.get("longrepr"))):
            seen.tampering.append("the daemon's canary test (which must fail) was reported "
                                  f"{canary_report.get('outcome')}")
        elif canary_report is None and seen.finish is not None and any(k[1] == "call" for k in seen.reports):
            seen.tampering.append("the daemon's canary test never reported, though the session ran tests")
    elif seen.collected and seen.finish is not None:
        seen.tampering.append("the daemon's canary test was removed from the collected tests")


def judge(channel: Channel, rc: int, timed_out: bool, expected: Sequence[str] | None) -> TestResult:
    """The outcome of one pytest run from the channel's records and the exit status the daemon saw."""
    seen = _read_records(channel)
    _consistency(seen, channel)
    result = TestResult(outcome="passed", framework="pytest")
    canary_ids = {n for n in seen.collected or [] if n.rsplit("::", 1)[-1] == channel.canary_name}
    for error in seen.collect_errors:
        result.errors += 1
        longrepr = str(error.get("longrepr", ""))
        raised = [ln[1:].strip() for ln in longrepr.splitlines() if ln.startswith("E ")]
        result.failures.append(TestFailure(test_name=str(error.get("id")) or "collection",
                                           error_message=(raised[-1] if raised else "collection failed")[:1000],
                                           traceback=tail(longrepr, TRACEBACK_CHARS)))
    outcomes: dict[str, list[str]] = {}
    for (node, when), report in seen.reports.items():
        if node in canary_ids:
            continue
        outcome = str(report.get("outcome"))
        if when == "call":
            outcomes.setdefault(base_id(node), []).append(outcome if not report.get("xfail") else "xfail")
            result.test_count += 1
            if outcome == "passed":
                result.passed_count += 1
            elif outcome == "skipped":
                result.skipped += 1
        if outcome == "failed":
            if when == "call":
                result.failed_count += 1
            else:
                result.errors += 1
            result.failures.append(TestFailure(
                test_name=node + ("" if when == "call" else f" ({when})"),
                error_message=str(report.get("message") or f"{when} failed")[:1000],
                traceback=tail(str(report.get("longrepr", "")), TRACEBACK_CHARS)))
        elif outcome == "skipped" and when == "setup":
            outcomes.setdefault(base_id(node), []).append("skipped")
            result.test_count += 1
            result.skipped += 1
    missing = []
    cut_short = timed_out or rc < 0  # what did not run is the timeout's or the signal's doing, said once
    for want in [] if cut_short else expected or []:
        got = outcomes.get(want)
        if not got:
            missing.append(want)
            result.failures.append(TestFailure(test_name=want, error_message="this test of QA's file was not run "
                                               "to the end (not collected, deselected or its run was cut short)"))
        elif any(o != "passed" for o in got) and not any(f.test_name.startswith(want) for f in result.failures):
            result.failures.append(TestFailure(test_name=want, error_message="skipped or expected to fail: every "
                                               "test of QA's file must run and pass"))
            result.failed_count += 1
    if seen.end is None and not timed_out and rc == 0:
        seen.tampering.append("the test process exited with status 0 before the session ended (os._exit?)")
    if seen.end is not None and rc >= 0 and seen.end != rc:
        seen.tampering.append(f"the exit status {rc} is not the session's {seen.end}")
    if seen.end == 0 and canary_ids:
        seen.tampering.append("pytest said every test passed although the daemon's canary failed")
    result.tampering = list(dict.fromkeys(seen.tampering))
    if result.tampering:
        result.outcome = "failed"
        result.failures.insert(0, TestFailure(test_name=TAMPERING, error_message="; ".join(result.tampering)[:2000]))
    elif timed_out:
        result.outcome = "timeout"
    elif rc < 0 or seen.end is None:
        result.outcome = "failed" if (result.failures or rc < 0 or seen.reports) else "could_not_run"
        if rc >= 0 and seen.reports:
            result.failures.insert(0, TestFailure(test_name="test process", error_message=(
                f"the test process ended with exit status {rc} before the session finished (the code under test "
                "ended it?)")))
    elif seen.end in (3, 4) or (seen.finish is None and not seen.reports):
        result.outcome = "could_not_run"
    elif result.failures or result.failed_count or result.errors:
        result.outcome = "failed"
    elif result.passed_count == 0 or seen.end == 5:
        result.outcome = "no_tests"
    elif missing:
        result.outcome = "failed"
    return result
