"""Read test reports: pytest's JUnit XML and jest's ``--json`` output. Never scrape console text."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

from ai_agents.errors import TestRunError
from ai_agents.testing.result import TRACEBACK_CHARS, TestFailure, TestResult, tail

# The report is written inside the sandbox, so it is untrusted input: cap its size and depth.
MAX_REPORT_BYTES = 20 * 1024 * 1024
MAX_XML_DEPTH = 64  # a JUnit report is 3 levels deep; hundreds of thousands is an attack


def _parse_xml(text: str) -> ET.Element:
    """The root of ``text``, refused if it nests deeper than :data:`MAX_XML_DEPTH`."""
    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start", "end"))
    try:
        parser.feed(text)
        parser.close()
    except ET.ParseError as e:
        raise TestRunError(f"the JUnit report is not valid XML: {e}") from e
    depth, root = 0, None
    # Only start and end events were asked for: each is (event, element).
    for event, element in cast("Iterator[tuple[str, ET.Element]]", parser.read_events()):
        if event == "start":
            root = element if root is None else root
            depth += 1
            if depth > MAX_XML_DEPTH:
                raise TestRunError(f"the JUnit report nests deeper than {MAX_XML_DEPTH} levels")
        else:
            depth -= 1
    if root is None:
        raise TestRunError("the JUnit report is empty")
    return root


def _node_name(case: ET.Element) -> str:
    """``tests/test_x.py::TestCls::test_y`` from a JUnit testcase (xunit1 has the file)."""
    name = case.get("name", "?")
    classname = case.get("classname", "")
    file = case.get("file")
    if file:
        module = file.removesuffix(".py").replace("/", ".").replace(os.sep, ".")
        cls = classname[len(module) + 1:] if classname.startswith(module + ".") else ""
        return "::".join(p for p in (file, cls, name) if p)
    return f"{classname}::{name}" if classname else name


def parse_junit(text: str) -> TestResult:
    """Counts and failures from pytest's ``--junitxml`` report."""
    root = _parse_xml(text)
    result = TestResult(outcome="passed", framework="pytest")
    for case in root.iter("testcase"):
        result.test_count += 1
        problem = case.find("failure")
        kind = "failure"
        if problem is None:
            problem, kind = case.find("error"), "error"
        if problem is not None:
            if kind == "failure":
                result.failed_count += 1
            else:
                result.errors += 1
            message = (problem.get("message") or "").strip()
            trace = (problem.text or "").strip()
            # "collection failure" says nothing; the exception line (pytest's "E   ...") does.
            raised = [ln[1:].strip() for ln in trace.splitlines() if ln.startswith("E ")]
            if kind == "error" and raised and raised[-1] not in message:
                message = f"{message}: {raised[-1]}" if message else raised[-1]
            result.failures.append(TestFailure(
                test_name=_node_name(case),
                error_message=message or (trace.splitlines()[-1] if trace else kind),
                traceback=tail(trace, TRACEBACK_CHARS),
            ))
        elif case.find("skipped") is not None:
            result.skipped += 1
        else:
            result.passed_count += 1
    return result


def parse_jest(text: str, root: Path | None = None) -> TestResult:
    """Counts and failures from ``jest --json --outputFile``."""
    try:
        data: dict[str, Any] = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise TestRunError(f"the jest report is not valid JSON (or nested too deeply): {type(e).__name__}") from e
    if not isinstance(data, dict):
        raise TestRunError("the jest report is not a JSON object")
    result = TestResult(outcome="passed", framework="jest",
                        passed_count=int(data.get("numPassedTests", 0)),
                        failed_count=int(data.get("numFailedTests", 0)),
                        skipped=int(data.get("numPendingTests", 0)) + int(data.get("numTodoTests", 0)),
                        errors=int(data.get("numRuntimeErrorTestSuites", 0)),
                        test_count=int(data.get("numTotalTests", 0)))
    for suite in data.get("testResults", []):
        file = str(suite.get("name", "?"))
        if root is not None and file.startswith(str(root) + "/"):
            file = file[len(str(root)) + 1:]
        for case in suite.get("assertionResults", []):
            if case.get("status") == "failed":
                messages = "\n".join(case.get("failureMessages") or [])
                result.failures.append(TestFailure(
                    test_name=f"{file}::{case.get('fullName') or case.get('title')}",
                    error_message=(messages.strip().splitlines() or ["failed"])[0],
                    traceback=tail(messages, TRACEBACK_CHARS)))
        if suite.get("status") == "failed" and not suite.get("assertionResults"):
            message = str(suite.get("message") or suite.get("failureMessage") or "test suite failed to run")
            result.failures.append(TestFailure(test_name=file, error_message=message.strip().splitlines()[0]
                                               if message.strip() else "failed", traceback=tail(message)))
    return result


def parse_test_results(report: str | Path, framework: str, root: Path | None = None) -> TestResult:
    """Parse a report given as a path or as its text. ``framework`` is "pytest" or "jest".

    The outcome is "passed"/"failed" from the report's own counts (no exit code here);
    the runner refines it with the exit status.
    """
    text: str
    if isinstance(report, Path) or (isinstance(report, str) and "\n" not in report and len(report) < 4096
                                    and not report.lstrip().startswith(("<", "{"))):
        path = Path(report)
        if path.stat().st_size > MAX_REPORT_BYTES:
            raise TestRunError(f"the test report {path} is over {MAX_REPORT_BYTES} bytes")
        text = path.read_text(encoding="utf-8", errors="replace")
    else:
        text = str(report)
    if framework == "pytest":
        result = parse_junit(text)
    elif framework == "jest":
        result = parse_jest(text, root)
    else:
        raise TestRunError(f"unknown test framework {framework!r}")
    if result.failed_count or result.errors:
        result.outcome = "failed"
    elif result.passed_count == 0:
        result.outcome = "no_tests"
    return result
