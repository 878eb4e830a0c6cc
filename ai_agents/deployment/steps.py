"""Runs the commands of one deployment record: each becomes a redacted step, saved as it ends."""

from __future__ import annotations

from collections.abc import Callable

import structlog

from ai_agents.deployment.records import DeploymentRecord, Phase, StepRecord
from ai_agents.deployment.runner import CommandResult
from ai_agents.deployment.transport import Shell
from ai_agents.errors import DeploymentError
from ai_agents.logging_setup import Redactor

log = structlog.get_logger("ai_agents.deployment")

OUTPUT_TAIL_CHARS = 2000


class StepFailedError(DeploymentError):
    """A step failed; the step itself is already in the record."""


class StepRecorder:
    """Appends one :class:`StepRecord` per command to ``record`` and reports each change.

    ``release_started`` turns true once a command that touches what is running
    (phase ``release``) has begun: only from then on does a failure need a rollback.
    """

    def __init__(self, record: DeploymentRecord, *, redactor: Redactor, timeout: float,
                 on_change: Callable[[DeploymentRecord], None]):
        self.record = record
        self.redactor = redactor
        self.timeout = timeout
        self.on_change = on_change
        self.release_started = False

    def run(self, phase: Phase, shell: Shell, command: str) -> CommandResult:
        """Run and record; raise :class:`StepFailedError` unless it exited 0 in time."""
        result = self.attempt(phase, shell, command)
        if not result.ok:
            shown = self.redactor.redact(command)
            if result.timed_out:
                raise StepFailedError(f"{phase} step timed out after {self.timeout:g}s on {shell.target}: {shown}")
            raise StepFailedError(f"{phase} step failed with exit code {result.exit_code} on {shell.target}: "
                                  f"{shown}: {self.tail(self.redactor.redact(result.output), 300)}")
        return result

    def attempt(self, phase: Phase, shell: Shell, command: str, *, record: bool = True) -> CommandResult:
        """Run and (unless ``record`` is false) record, whatever the outcome; never raises for an exit code."""
        if phase == "release":
            self.release_started = True
        result = shell.run(command, timeout=self.timeout)
        log.info("deploy_step", record_id=self.record.id, phase=phase, target=shell.target,
                 command=self.redactor.redact(command), exit_code=result.exit_code,
                 timed_out=result.timed_out, duration=round(result.duration, 3))
        if record:
            self.add(StepRecord(phase=phase, command=command, target=shell.target, exit_code=result.exit_code,
                                output_tail=result.output, timed_out=result.timed_out,
                                duration=round(result.duration, 3)))
        return result

    def add(self, step: StepRecord) -> StepRecord:
        """Record a step (redacting command and output), save the record, return the step as stored."""
        step = step.model_copy(update={"command": self.redactor.redact(step.command),
                                       "output_tail": self.tail(self.redactor.redact(step.output_tail))})
        self.record.steps.append(step)
        self.on_change(self.record)
        return step

    @staticmethod
    def tail(text: str, limit: int = OUTPUT_TAIL_CHARS) -> str:
        text = text.strip()
        return text if len(text) <= limit else "..." + text[-limit:]
