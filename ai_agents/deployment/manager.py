"""DeploymentManager: deploy a merged commit, roll back, and say what is live."""

from __future__ import annotations

import os
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Literal

import structlog

from ai_agents.config.models import DeploymentConfig
from ai_agents.deployment.ci_cd import CiCdStrategy
from ai_agents.deployment.direct import DirectStrategy
from ai_agents.deployment.docker import DockerStrategy
from ai_agents.deployment.records import (
    DeploymentFailedError,
    DeploymentHistory,
    DeploymentRecord,
    DeploymentStatus,
    Ledger,
)
from ai_agents.deployment.runner import CommandRunner, minimal_env
from ai_agents.deployment.steps import StepFailedError, StepRecorder
from ai_agents.deployment.strategy import Strategy
from ai_agents.deployment.transport import LocalShell, Shell, SshShell
from ai_agents.domain import CheckResult, utcnow
from ai_agents.errors import DeploymentError
from ai_agents.logging_setup import Redactor
from ai_agents.memory.store import MemoryStore

log = structlog.get_logger("ai_agents.deployment")

_COMMIT = re.compile(r"^[0-9a-f]{7,64}$")
ACTIVITY_AGENT = "deployment"


def build_strategy(config: DeploymentConfig, runner: CommandRunner, workdir: Path, *, wait: threading.Event,
                   ci_cd_rollback_command: str | None = None) -> Strategy:
    """The strategy for ``config.type``, its commands running through ``runner``."""
    local = LocalShell(runner, workdir)
    if config.type == "direct":
        d = config.direct
        shell: Shell = local if d.transport == "local" else SshShell(
            runner, host=d.host, port=d.port, user=d.user, key_path=d.key_path, known_hosts=d.known_hosts,
            connect_timeout=min(10.0, config.command_timeout))
        return DirectStrategy(d, shell)
    if config.type == "docker":
        return DockerStrategy(config.docker, local)
    return CiCdStrategy(config.ci_cd, local, provider=config.ci_cd_provider,
                        http_timeout=min(30.0, config.command_timeout), wait=wait.wait,
                        rollback_command=ci_cd_rollback_command)


class DeploymentManager:
    """Deploys commits the caller has merged (and pushed), keeping a ledger of what went live.

    ``deploy`` and ``rollback`` return the record when they succeed and raise
    :class:`DeploymentFailedError` (a ``DeploymentError`` carrying the record)
    when they fail; the record is stored either way. One deployment at a time per
    manager; the ledger is in ``state`` (or in memory without a store).
    """

    def __init__(self, config: DeploymentConfig, *, workdir: Path, state: MemoryStore | None,
                 runner: CommandRunner, redactor: Redactor | None = None, stop: threading.Event | None = None,
                 ci_cd_rollback_command: str | None = None):
        self.workdir = workdir
        self.state = state
        self.runner = runner
        self.redactor = redactor or Redactor()
        self.stop = stop or threading.Event()
        self.history = DeploymentHistory(state)
        self._ci_cd_rollback_command = ci_cd_rollback_command
        self._lock = threading.Lock()
        self.config = config
        self.strategy = build_strategy(config, runner, workdir, wait=self.stop,
                                       ci_cd_rollback_command=ci_cd_rollback_command)

    @classmethod
    def from_config(cls, cfg: DeploymentConfig, workdir: Path, memory: MemoryStore | None, *,
                    environ: Mapping[str, str] | None = None, secrets: Iterable[str] = (),
                    stop: threading.Event | None = None) -> DeploymentManager:
        """Build the runner (minimal env from ``environ``, default the process env) and the manager."""
        env = minimal_env(os.environ if environ is None else environ)
        runner = CommandRunner(env, timeout=cfg.command_timeout)
        # Not a DeploymentConfig field yet: read it when the config grows one (see the report).
        rollback_command = getattr(cfg.ci_cd, "rollback_command", None)
        return cls(cfg, workdir=workdir, state=memory, runner=runner, redactor=Redactor(secrets), stop=stop,
                   ci_cd_rollback_command=rollback_command)

    def reconfigure(self, config: DeploymentConfig) -> None:
        """Apply a changed ``deployment`` section (a live key); waits for a running deployment."""
        with self._lock:
            self.config = config
            self.runner.timeout = config.command_timeout
            self.strategy = build_strategy(config, self.runner, self.workdir, wait=self.stop,
                                           ci_cd_rollback_command=self._ci_cd_rollback_command)

    # --- deploy / rollback --------------------------------------------------------------
    def deploy(self, commit: str, *, task_id: str | None = None,
               guard: Callable[[], None] | None = None) -> DeploymentRecord:
        """Deploy ``commit``; on a failed release step roll back to the previous good commit.

        ``guard`` (the caller's lease check) runs once this manager's lock is held, right before
        anything is recorded or run: when it raises, nothing is deployed.
        """
        commit = self._valid_commit(commit)
        with self._lock:
            if guard is not None:
                guard()
            ledger = self.history.load()
            record = self._start(ledger, "deploy", commit, task_id)
            steps = self._recorder(ledger, record)
            try:
                record.detail = self.strategy.deploy(commit, steps)
            except StepFailedError as e:
                record.error = self.redactor.redact(str(e))
                if steps.release_started:
                    self._auto_rollback(ledger, record, steps)
                else:
                    record.detail = f"nothing was released; {ledger.current or 'no earlier deploy'} is still live"
                self._finish(ledger, record, "failed")
                raise DeploymentFailedError(f"deploy of {commit} failed: {record.error}; {record.detail}",
                                            record) from e
            except Exception as e:
                self._abort(ledger, record, e)
                raise
            ledger.mark_good(commit)
            self._finish(ledger, record, "succeeded")
            return record

    def rollback(self, *, task_id: str | None = None, guard: Callable[[], None] | None = None) -> DeploymentRecord:
        """Go back to the successful deployment before the current one (``guard`` as in :meth:`deploy`)."""
        self._require_enabled()
        with self._lock:
            if guard is not None:
                guard()
            ledger = self.history.load()
            target = ledger.previous
            if target is None:
                raise DeploymentError(f"no earlier successful deployment to roll back to "
                                      f"(current: {ledger.current or 'none'})")
            record = self._start(ledger, "rollback", target, task_id)
            unavailable = self.strategy.rollback_unavailable()
            if unavailable is not None:
                record.error = f"rollback to {target} not performed"
                record.detail = unavailable
                self._finish(ledger, record, "failed")
                raise DeploymentFailedError(f"{record.error}: {unavailable}", record)
            steps = self._recorder(ledger, record)
            try:
                record.detail = self.strategy.rollback(target, steps)
            except StepFailedError as e:
                record.error = self.redactor.redact(str(e))
                record.detail = f"rollback to {target} failed; what runs now is unknown"
                self._finish(ledger, record, "failed")
                raise DeploymentFailedError(f"rollback to {target} failed: {record.error}", record) from e
            except Exception as e:
                self._abort(ledger, record, e)
                raise
            ledger.drop_current()
            self._finish(ledger, record, "succeeded")
            return record

    def _auto_rollback(self, ledger: Ledger, record: DeploymentRecord, steps: StepRecorder) -> None:
        target = ledger.current
        if target is None:
            record.detail = f"not rolled back: no earlier successful deployment; {record.commit} may be partly live"
            return
        unavailable = self.strategy.rollback_unavailable()
        if unavailable is not None:
            record.detail = f"not rolled back: {unavailable}; {record.commit} may be partly live"
            return
        log.warning("rollback_started", record_id=record.id, commit=target, failed_commit=record.commit,
                    automatic=True)
        try:
            self.strategy.rollback(target, steps)
        except StepFailedError as e:
            shown = self.redactor.redact(str(e))
            log.error("rollback_failed", record_id=record.id, commit=target, error=shown)
            record.detail = f"rollback to {target} also failed ({shown}); what runs now is unknown"
            return
        log.info("rollback_succeeded", record_id=record.id, commit=target, automatic=True)
        record.rolled_back_to = target
        record.detail = f"rolled back to {target}"

    # --- status / doctor ------------------------------------------------------------------
    def check_status(self) -> DeploymentStatus:
        """What the ledger says is live. An unreadable ledger is reported, not raised."""
        try:
            ledger = self.history.load()
        except DeploymentError as e:
            log.error("deployment_history_unreadable", error=str(e))
            return DeploymentStatus(state="unknown", detail=str(e))
        return ledger.status()

    def check(self) -> CheckResult:
        """One line for ``doctor``: can the configured deployment type work from here?"""
        if not self.config.enabled:
            return CheckResult("deployment", True, "deployment is disabled", {"enabled": False})
        return self.strategy.check()

    # --- bookkeeping -----------------------------------------------------------------------
    def _require_enabled(self) -> None:
        if not self.config.enabled:
            raise DeploymentError("deployment is disabled (deployment.enabled: false)")

    def _valid_commit(self, commit: str) -> str:
        self._require_enabled()
        # A sha only: it is substituted into shell commands and used as a docker tag.
        normalized = commit.strip().lower()
        if not _COMMIT.match(normalized):
            raise DeploymentError(f"not a git commit sha: {commit!r}")
        return normalized

    def _start(self, ledger: Ledger, action: Literal["deploy", "rollback"], commit: str,
               task_id: str | None) -> DeploymentRecord:
        record = DeploymentRecord(id=uuid.uuid4().hex[:12], action=action, type=self.config.type, commit=commit,
                                  previous_commit=ledger.current, task_id=task_id)
        # Saved before any command runs: a crash mid-deploy leaves a "running" record, i.e. state unknown.
        self._save(ledger, record)
        log.info(f"{action}_started", record_id=record.id, type=record.type, commit=commit, task_id=task_id,
                 previous_commit=ledger.current)
        return record

    def _recorder(self, ledger: Ledger, record: DeploymentRecord) -> StepRecorder:
        return StepRecorder(record, redactor=self.redactor, timeout=self.config.command_timeout,
                            on_change=lambda r: self._save(ledger, r))

    def _save(self, ledger: Ledger, record: DeploymentRecord) -> None:
        ledger.put(record)
        self.history.save(ledger)

    def _finish(self, ledger: Ledger, record: DeploymentRecord, status: Literal["succeeded", "failed"]) -> None:
        record.status = status
        record.finished_at = utcnow()
        self._save(ledger, record)
        fields = {"record_id": record.id, "type": record.type, "commit": record.commit,
                  "detail": record.detail, "error": record.error, "rolled_back_to": record.rolled_back_to}
        event = f"{record.action}_{status}"
        (log.info if status == "succeeded" else log.error)(event, task_id=record.task_id, **fields)
        if self.state is not None:
            self.state.log_activity(ACTIVITY_AGENT, event, fields, task_id=record.task_id)

    def _abort(self, ledger: Ledger, record: DeploymentRecord, error: Exception) -> None:
        # Not a step failure (a bug, the database): still close the record so status is not left "running".
        record.error = self.redactor.redact(f"internal error: {error!r}")
        record.detail = "stopped by an internal error; what runs now is unknown"
        self._finish(ledger, record, "failed")
