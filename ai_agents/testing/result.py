"""TestResult: what a test run found, in terms the pipeline and the prompts use."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, computed_field

Outcome = Literal["passed", "failed", "no_tests", "could_not_run", "timeout"]
OUTPUT_TAIL_CHARS = 4000
TRACEBACK_CHARS = 4000


class TestFailure(BaseModel):
    """One failing or erroring test (or a module that could not be collected)."""

    __test__ = False  # not a pytest test class

    test_name: str
    error_message: str = ""
    traceback: str = ""


class TestResult(BaseModel):
    """The result of one run.

    ``passed`` is the only green light: it means tests ran, at least one passed and
    none failed. ``failed`` means tests ran (or hung) and something failed; it is
    False for ``no_tests`` and ``could_not_run``, which are neither.
    """

    __test__ = False

    outcome: Outcome
    passed_count: int = 0
    failed_count: int = 0
    errors: int = Field(0, description="tests or modules that errored (collection/import errors included)")
    skipped: int = 0
    test_count: int = 0
    duration: float = Field(0.0, description="seconds, wall clock")
    failures: list[TestFailure] = Field(default_factory=list)
    output_tail: str = Field("", description=f"last {OUTPUT_TAIL_CHARS} characters of the output")
    framework: str | None = None
    exit_code: int | None = None
    sandbox: Literal["bwrap", "none"] = "none"
    protections: list[str] = Field(default_factory=list, description="what contained this run, one line each")
    started_ahead: bool = Field(False, description="the test process was started before the run was asked for "
                                "(TestRunner.warm), in the sandbox the run would have had")
    tampering: list[str] = Field(default_factory=list, description="why the daemon judged that the test process "
                                 "tried to change its own verdict (test_tampering); never a pass")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def passed(self) -> bool:
        return self.outcome == "passed"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def failed(self) -> bool:
        return self.outcome in ("failed", "timeout")


def tail(text: str, limit: int = OUTPUT_TAIL_CHARS) -> str:
    return text if len(text) <= limit else "…" + text[-(limit - 1):]
