"""The code pipeline's stage machine, typed: its stages, its release actions and each stage's payload.

A code task's payload (SQLite) is the daemon's record of where the task is. ``stage`` is written
only by the orchestrator's hand-off or approval request, from the :class:`Stage` a flow returned;
a stage's result is dumped from these models without it, so nothing a model wrote can name the
next stage. What a stage reads is validated here: an unknown stage fails the task with a clear
error instead of being taken for another stage. Payloads written by the previous version (the
``push_done``/``deploy_done`` flags) load through :meth:`ReleasePayload._previous_flags`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ai_agents.agents.models import CodeChange
from ai_agents.domain import Role
from ai_agents.errors import TaskFailedError


class Stage(StrEnum):
    TESTS = "tests"  # QA writes failing tests
    CODE = "code"  # the Developer makes them pass; reviewed; committed on the task branch
    MERGE = "merge"  # the Tech Lead's: through the merge queue (a Developer worker never waits on it)
    RELEASE = "release"  # push and deploy, each behind an approval when asked


class ReleaseAction(StrEnum):
    PUSH = "push"
    DEPLOY = "deploy"


STAGE_ROLES = {Stage.TESTS: Role.QA, Stage.CODE: Role.DEVELOPER, Stage.MERGE: Role.TECH_LEAD,
               Stage.RELEASE: Role.DEVELOPER}


class StagePayload(BaseModel):
    """What every stage reads: the stage itself and the task branch. Keys of other parts of the
    daemon (``escalations``, the dependency gate's ``packages``...) are left to them."""

    model_config = ConfigDict(extra="ignore")

    stage: Stage = Stage.TESTS
    branch: str | None = None

    @classmethod
    def load(cls, payload: dict[str, Any]) -> Self:
        """The stage's view of a task payload; a payload that does not fit fails the task, clearly."""
        try:
            return cls.model_validate(payload)
        except ValidationError as e:
            problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'payload'}: {err['msg']}" for err in e.errors())
            raise TaskFailedError(f"the task's {cls.__name__} is not valid: {problems}"[:1500]) from e

    def result(self, *fields: str) -> dict[str, Any]:
        """The stage result to store (``fields`` only, when given); never the stage: the daemon sets it."""
        include = set(fields) if fields else None
        return self.model_dump(mode="json", include=include, exclude={"stage"})


def stage_of(payload: dict[str, Any]) -> Stage:
    """The task's stage as the daemon recorded it (raises TaskFailedError for one it does not know)."""
    return StagePayload.load(payload).stage


class TestsHandoff(StagePayload):
    """QA's result, the code stage's input: the committed tests and what they are about."""

    __test__ = False  # not a pytest test class

    test_path: str
    test_paths: list[str] = Field(default_factory=list)
    module_path: str = ""
    modules: list[str] = Field(default_factory=list)
    requirements: list[str] = Field(default_factory=list)
    constraints: list[str] = Field(default_factory=list)
    tests_commit: str | None = None
    tests_summary: str = ""

    def qa_files(self) -> set[str]:
        """QA's test files of this task, which the Developer may not write."""
        return {self.test_path, *self.test_paths}


class CodePayload(TestsHandoff):
    """The code and merge stages' input: QA's hand-off plus what earlier runs of the stages recorded."""

    queue_returns: int = 0  # times the merge queue sent the branch back
    queue_feedback: list[str] = Field(default_factory=list)  # why, the last time (conflict hunks, failures)
    pending_change: CodeChange | None = None  # the change that waited for a dependency approval
    tests_passed: int | None = None
    attempt_test_seconds: float = 0.0  # the attempts' test runs, all runs of the stage together
    code_commit: str | None = None  # the Developer's commit the merge stage brings into main

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        # The previous version stored ``queue_feedback: []`` or None, and no ``queue_returns`` at all.
        if isinstance(data, dict):
            data = {**data}
            for key in ("queue_feedback", "test_paths", "modules", "requirements", "constraints"):
                if data.get(key) is None:
                    data.pop(key, None)
            if data.get("queue_returns") is None:
                data.pop("queue_returns", None)
        return data


class ReleasePayload(StagePayload):
    """The release stage's input (the merged task) and the actions already done."""

    test_path: str | None = None
    module_path: str | None = None
    tests_commit: str | None = None
    code_commit: str | None = None
    merge_commit: str
    tests_passed: int | None = None
    attempt_test_seconds: float | None = None
    queue_test_seconds: float | None = None
    released: list[ReleaseAction] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _previous_flags(cls, data: Any) -> Any:
        """The previous version recorded a done action as ``<action>_done: true``."""
        if isinstance(data, dict):
            done = {str(a) for a in data.get("released") or []}
            done |= {a.value for a in ReleaseAction if data.get(f"{a.value}_done") is True}
            data = {**data, "released": [a.value for a in ReleaseAction if a.value in done]}
        return data

    def summary(self) -> dict[str, Any]:
        """The task's final result: where its work is and what its tests cost."""
        return self.result("branch", "test_path", "module_path", "tests_commit", "code_commit", "merge_commit",
                           "tests_passed", "attempt_test_seconds", "queue_test_seconds")
