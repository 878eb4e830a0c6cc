"""The one interface the manager drives, whatever ``deployment.type`` says."""

from __future__ import annotations

from typing import Protocol

from ai_agents.deployment.records import DeployType
from ai_agents.deployment.steps import StepRecorder
from ai_agents.domain import CheckResult


class Strategy(Protocol):
    """How one deployment type deploys, rolls back and checks itself.

    ``deploy`` and ``rollback`` run their commands through the
    :class:`StepRecorder` (which raises ``StepFailedError`` on the first failing
    step) and return one sentence for the record's ``detail``. Steps of phase
    ``prepare`` change nothing that is running; the manager rolls back only after
    a ``release`` step has started.
    """

    type: DeployType

    def deploy(self, commit: str, steps: StepRecorder) -> str: ...

    def rollback(self, target: str, steps: StepRecorder) -> str: ...

    def rollback_unavailable(self) -> str | None:
        """Why this configuration cannot roll back, or None when it can."""
        ...

    def check(self) -> CheckResult: ...
