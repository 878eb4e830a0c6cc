"""check_status and the stored ledger: persistence, bounds, crashes, corruption, redaction."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import structlog.testing

from ai_agents.config.models import DeploymentConfig
from ai_agents.deployment import CommandRunner, DeploymentManager, DeploymentRecord
from ai_agents.deployment.records import HISTORY_LIMIT, STATE_KEY, Ledger
from ai_agents.errors import DeploymentError
from ai_agents.logging_setup import Redactor
from ai_agents.memory import MemoryStore

if TYPE_CHECKING:
    from conftest import Site

A, B, C = "aaaa1111", "bbbb2222", "cccc3333"


def direct(site: Site, runner: CommandRunner, store: MemoryStore | None) -> DeploymentManager:
    return DeploymentManager(DeploymentConfig(type="direct", command_timeout=20, direct=site.direct()),
                             workdir=site.root, state=store, runner=runner)


def test_never_deployed_then_deployed_then_failed(site: Site, runner: CommandRunner, store: MemoryStore) -> None:
    manager = direct(site, runner, store)
    assert manager.check_status().state == "never_deployed"
    site.release(A)
    manager.deploy(A)
    status = manager.check_status()
    assert (status.state, status.current_commit, status.previous_commit) == ("deployed", A, None)
    assert status.last is not None and status.last.commit == A and status.last.finished_at is not None

    with pytest.raises(DeploymentError):
        manager.deploy(B)  # B was never released: cp fails, rollback restores A
    status = manager.check_status()
    assert (status.state, status.current_commit) == ("rolled_back", A)
    assert "release step failed" in status.detail and f"rolled back to {A}" in status.detail


def test_the_ledger_survives_a_restart_so_rollback_knows_the_previous_commit(
        site: Site, runner: CommandRunner, store: MemoryStore) -> None:
    for commit in (A, B):
        site.release(commit)
        direct(site, runner, store).deploy(commit)
    restarted = direct(site, runner, store)
    assert restarted.check_status().previous_commit == A
    restarted.rollback()
    assert site.marker() == A
    stored, _at = store.get_state(STATE_KEY)
    assert [r["action"] for r in stored["history"]] == ["deploy", "deploy", "rollback"]
    assert stored["good_commits"] == [A]


def test_history_is_bounded(site: Site, runner: CommandRunner, store: MemoryStore) -> None:
    cfg = DeploymentConfig(type="direct", direct=site.direct(deploy_commands=[], check_command=None))
    manager = DeploymentManager(cfg, workdir=site.root, state=store, runner=runner)
    for i in range(HISTORY_LIMIT + 5):
        manager.deploy(f"{i:08x}")
    stored, _at = store.get_state(STATE_KEY)
    assert len(stored["history"]) == HISTORY_LIMIT and len(stored["good_commits"]) == HISTORY_LIMIT
    assert stored["history"][-1]["commit"] == f"{HISTORY_LIMIT + 4:08x}"
    assert stored["history"][0]["commit"] == f"{5:08x}"


def test_a_deploy_that_never_finished_reads_as_unknown(site: Site, runner: CommandRunner,
                                                       store: MemoryStore) -> None:
    ledger = Ledger()
    ledger.put(DeploymentRecord(id="crashed", action="deploy", type="direct", commit=C))
    store.set_state(STATE_KEY, ledger.model_dump(mode="json"))
    status = direct(site, runner, store).check_status()
    assert status.state == "unknown" and "never finished" in status.detail


def test_an_unreadable_ledger_reads_as_unknown_and_blocks_deploys(site: Site, runner: CommandRunner,
                                                                  store: MemoryStore) -> None:
    store.set_state(STATE_KEY, {"history": "not a list"})
    manager = direct(site, runner, store)
    status = manager.check_status()
    assert status.state == "unknown" and "unreadable" in status.detail
    site.release(A)
    with pytest.raises(DeploymentError, match="unreadable"):
        manager.deploy(A)
    assert not (site.server / "marker").exists()


def test_step_output_commands_and_errors_are_redacted(site: Site, runner: CommandRunner) -> None:
    secret = "hunter2-deploy-password"
    cfg = DeploymentConfig(type="direct", direct=site.direct(
        deploy_commands=[f"echo using {secret}; echo token=ghp_abcdefghijklmnopqrstuvwx1234"], check_command=None))
    manager = DeploymentManager(cfg, workdir=site.root, state=None, runner=runner, redactor=Redactor([secret]))
    record = manager.deploy(A)
    text = record.model_dump_json()
    assert secret not in text and "ghp_abcdefghij" not in text
    assert "[REDACTED]" in record.steps[0].output_tail and "[REDACTED]" in record.steps[0].command

    failing = DeploymentConfig(type="direct", direct=site.direct(
        deploy_commands=[f"echo {secret} >&2; exit 1"], rollback_commands=[], check_command=None))
    manager = DeploymentManager(failing, workdir=site.root, state=None, runner=runner, redactor=Redactor([secret]))
    with pytest.raises(DeploymentError) as failed:
        manager.deploy(B)
    assert secret not in str(failed.value) and "[REDACTED]" in str(failed.value)
    assert secret not in manager.check_status().model_dump_json()


def test_disabled_deployment_refuses_and_doctor_says_so(site: Site, runner: CommandRunner) -> None:
    cfg = DeploymentConfig(enabled=False, type="direct", direct=site.direct())
    manager = DeploymentManager(cfg, workdir=site.root, state=None, runner=runner)
    with pytest.raises(DeploymentError, match="disabled"):
        manager.deploy(A)
    with pytest.raises(DeploymentError, match="disabled"):
        manager.rollback()
    check = manager.check()
    assert check.ok and "disabled" in check.detail


def test_structured_log_events_of_a_rolled_back_deploy(site: Site, runner: CommandRunner) -> None:
    manager = direct(site, runner, None)
    site.release(A)
    site.release(B, healthy=False)
    manager.deploy(A)
    with structlog.testing.capture_logs() as logs, pytest.raises(DeploymentError):
        manager.deploy(B)
    events = [e["event"] for e in logs if e["event"] != "deploy_step"]
    assert events == ["deploy_started", "rollback_started", "rollback_succeeded", "deploy_failed"]
    failed = logs[-1]
    assert failed["log_level"] == "error" and failed["rolled_back_to"] == A and failed["commit"] == B
