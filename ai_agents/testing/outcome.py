"""Turn (exit status, timeout, report) into one TestResult outcome.

pytest exit codes: 0 all passed, 1 some failed, 2 interrupted (collection errors),
3 internal error, 4 usage error (bad arguments, a conftest that does not import),
5 no tests collected. A negative status is a signal: a resource limit or a crash.
"""

from __future__ import annotations

import signal
from pathlib import Path

from ai_agents.errors import TestRunError
from ai_agents.testing.parsers import parse_test_results
from ai_agents.testing.result import Outcome, TestFailure, TestResult

PYTEST_NO_TESTS = 5
PYTEST_COULD_NOT_RUN = (3, 4)
PYTEST_INTERRUPTED = 2


def failure_result(outcome: Outcome, framework: str | None, message: str, bwrap: bool = False,
                   output: str = "") -> TestResult:
    """A result with no report: one pseudo-failure that says what happened."""
    return TestResult(outcome=outcome, framework=framework, output_tail=output or message,
                      sandbox="bwrap" if bwrap else "none",
                      failures=[TestFailure(test_name=outcome, error_message=message, traceback=output[-2000:])])


def signal_name(rc: int) -> str:
    try:
        return signal.Signals(-rc).name
    except ValueError:
        return f"signal {-rc}"


def decide(framework: str, rc: int, timed_out: bool, report: Path | None, output: str, timeout: float,
           root: Path) -> TestResult:
    if timed_out:
        result = failure_result("timeout", framework, f"the tests did not finish within {timeout:g}s and were "
                                "killed (an endless loop or a wait that never ends?)", output=output)
    elif report is None:
        if rc < 0:
            result = failure_result("failed", framework, f"the test process was killed by {signal_name(rc)} "
                                    "(a resource limit: CPU time, memory or processes?)", output=output)
        elif framework == "pytest" and rc == PYTEST_NO_TESTS:
            result = TestResult(outcome="no_tests", framework=framework)
        else:
            last = " / ".join([ln.strip() for ln in output.splitlines() if ln.strip()][-3:]) or "no output"
            result = failure_result("could_not_run", framework, f"{framework} did not produce a report "
                                    f"(exit status {rc}): {last}", output=output)
    else:
        try:
            result = parse_test_results(report, framework, root)
        except TestRunError as e:
            result = failure_result("could_not_run", framework, str(e), output=output)
        else:
            result.outcome = _refine(framework, rc, result)
            if rc < 0:
                result.outcome = "failed"
                result.failures.append(TestFailure(test_name="test process",
                                                   error_message=f"killed by {signal_name(rc)}"))
    result.exit_code = rc
    result.output_tail = output
    return result


def _refine(framework: str, rc: int, parsed: TestResult) -> Outcome:
    """The report's counts corrected by what the exit status says."""
    if framework != "pytest":
        if parsed.test_count == 0 and not parsed.errors:
            return "no_tests"
        return parsed.outcome if rc == 0 or parsed.outcome == "failed" else "could_not_run"
    if rc == PYTEST_NO_TESTS:
        return "no_tests"
    if rc in PYTEST_COULD_NOT_RUN:
        return "could_not_run"
    if rc == PYTEST_INTERRUPTED:
        # Collection errors (an import error in a test module) are the code's failure: "failed",
        # with the traceback in failures. Interrupted with nothing to show: could not run.
        return "failed" if parsed.errors or parsed.failed_count else "could_not_run"
    if rc == 0:
        # All skipped is not a pass: nothing was shown to work.
        return "passed" if parsed.passed_count and not (parsed.failed_count or parsed.errors) else "no_tests"
    return "failed" if rc == 1 else "could_not_run"
