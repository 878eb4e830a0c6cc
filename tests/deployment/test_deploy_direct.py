"""type: direct, over a real sshd and with transport local: the same command sequence."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ai_agents.config.models import DeploymentConfig
from ai_agents.deployment import CommandRunner, DeploymentFailedError, DeploymentManager
from ai_agents.errors import DeploymentError
from ai_agents.memory import MemoryStore

if TYPE_CHECKING:
    from conftest import Site, Sshd

A, B, C = "aaaa1111", "bbbb2222", "cccc3333"


def ssh_fields(sshd: Sshd, **overrides: object) -> dict[str, object]:
    fields: dict[str, object] = {"transport": "ssh", "host": sshd.host, "port": sshd.port, "user": sshd.user,
                                 "key_path": sshd.key_path, "known_hosts": sshd.known_hosts}
    return {**fields, **overrides}


def manager_for(site: Site, runner: CommandRunner, store: MemoryStore | None, **direct: object) -> DeploymentManager:
    cfg = DeploymentConfig(type="direct", command_timeout=20, direct=site.direct(**direct))
    return DeploymentManager(cfg, workdir=site.root, state=store, runner=runner)


@pytest.mark.parametrize("transport", ["local", "ssh"])
def test_deploy_then_failing_check_rolls_back_to_the_previous_commit(
        transport: str, request: pytest.FixtureRequest, site: Site, runner: CommandRunner,
        store: MemoryStore) -> None:
    extra = ssh_fields(request.getfixturevalue("sshd")) if transport == "ssh" else {}
    manager = manager_for(site, runner, store, **extra)
    site.release(A)
    site.release(B)
    site.release(C, healthy=False)

    first = manager.deploy(A, task_id="t1")
    assert first.status == "succeeded" and site.marker() == A
    assert [s.phase for s in first.steps] == ["release", "release", "check"]
    assert all(s.exit_code == 0 for s in first.steps)
    assert first.steps[0].target == ("local" if transport == "local" else f"ssh {extra['user']}@127.0.0.1:"
                                     f"{extra['port']}")
    manager.deploy(B)
    assert site.marker() == B

    with pytest.raises(DeploymentFailedError) as failed:
        manager.deploy(C, task_id="t3")
    record = failed.value.record
    assert f"rolled back to {B}" in str(failed.value)
    assert record.status == "failed" and record.rolled_back_to == B
    assert record.error is not None and "check step failed with exit code 1" in record.error
    assert [s.phase for s in record.steps] == ["release", "release", "check", "rollback", "rollback",
                                               "rollback_check"]
    assert "unhealthy" in record.steps[2].output_tail
    assert site.marker() == B

    status = manager.check_status()
    assert (status.state, status.current_commit, status.previous_commit) == ("rolled_back", B, A)
    assert status.last is not None and status.last.id == record.id and f"rolled back to {B}" in status.detail

    back = manager.rollback()
    assert back.action == "rollback" and back.commit == A and back.status == "succeeded"
    assert site.marker() == A
    status = manager.check_status()
    assert (status.state, status.current_commit, status.previous_commit) == ("rolled_back", A, None)

    with pytest.raises(DeploymentError, match="no earlier successful deployment"):
        manager.rollback()
    events = [a["activity"] for a in store.activities()]
    assert events == ["deploy_succeeded", "deploy_succeeded", "deploy_failed", "rollback_succeeded"]


def test_a_failing_deploy_without_rollback_commands_says_it_was_not_rolled_back(
        site: Site, runner: CommandRunner) -> None:
    manager = manager_for(site, runner, None, rollback_commands=[])
    site.release(A)
    manager.deploy(A)
    with pytest.raises(DeploymentFailedError) as failed:
        manager.deploy(B)  # no release directory for B: the cp fails
    record = failed.value.record
    assert record.rolled_back_to is None and "not rolled back" in record.detail
    assert "rollback_commands" in record.detail
    assert [s.exit_code != 0 for s in record.steps] == [True]  # stopped at the first failing step
    assert manager.check_status().state == "failed"
    assert manager.check_status().current_commit == A


def test_a_hanging_deploy_command_is_killed_at_the_timeout_and_reported(site: Site,
                                                                         runner: CommandRunner) -> None:
    cfg = DeploymentConfig(type="direct", command_timeout=0.5,
                           direct=site.direct(deploy_commands=["echo starting", "sleep 60"], check_command=None))
    manager = DeploymentManager(cfg, workdir=site.root, state=None, runner=runner)
    started = time.monotonic()
    with pytest.raises(DeploymentFailedError, match=r"timed out after 0.5s") as failed:
        manager.deploy(A)
    assert time.monotonic() - started < 5
    step = failed.value.record.steps[-1]
    assert step.command == "sleep 60" and step.timed_out and step.exit_code is not None and step.exit_code < 0
    assert manager.check_status().state == "failed"


def test_commit_is_validated_and_shell_quoted(site: Site, runner: CommandRunner) -> None:
    manager = manager_for(site, runner, None)
    with pytest.raises(DeploymentError, match="not a git commit sha"):
        manager.deploy("abc1234; rm -rf /")
    assert manager.check_status().state == "never_deployed"


@pytest.mark.parametrize("transport", ["local", "ssh"])
def test_check_for_doctor(transport: str, request: pytest.FixtureRequest, site: Site,
                          runner: CommandRunner) -> None:
    extra = ssh_fields(request.getfixturevalue("sshd")) if transport == "ssh" else {}
    result = manager_for(site, runner, None, **extra).check()
    assert result.ok and result.name == "deployment"
    assert ("reachable" in result.detail) == (transport == "ssh")


def test_ssh_with_a_wrong_host_key_is_refused(sshd: Sshd, site: Site, runner: CommandRunner,
                                          tmp_path: Path) -> None:
    wrong = tmp_path / "wrong_known_hosts"
    other = tmp_path / "other_key"
    runner.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)])
    key_type, key = (tmp_path / "other_key.pub").read_text().split()[:2]
    wrong.write_text(f"[127.0.0.1]:{sshd.port} {key_type} {key}\n")
    manager = manager_for(site, runner, None, **ssh_fields(sshd, known_hosts=wrong))
    site.release(A)
    with pytest.raises(DeploymentFailedError) as failed:
        manager.deploy(A)
    step = failed.value.record.steps[0]
    assert step.exit_code == 255 and "host key" in step.output_tail.lower()
    assert not (site.server / "marker").exists()
    doctor = manager.check()
    assert not doctor.ok and "failed" in doctor.detail


def test_ssh_without_known_hosts_accepts_a_new_host_key_and_says_so(sshd: Sshd, site: Site,
                                                                      runner: CommandRunner) -> None:
    manager = manager_for(site, runner, None, **ssh_fields(sshd, known_hosts=None))
    site.release(A)
    record = manager.deploy(A)
    assert "accept-new" in record.detail and site.marker() == A
    # Remembered in the runner's HOME (trust on first use), not in the configured file (there is none).
    remembered = Path(runner.env["HOME"]) / ".ssh" / "known_hosts"
    assert sshd.host_public_key.split()[1] in remembered.read_text()


def test_ssh_to_a_closed_port_fails_the_doctor_check(site: Site, runner: CommandRunner, sshd: Sshd) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    result = manager_for(site, runner, None, **ssh_fields(sshd, port=closed)).check()
    assert not result.ok and "exit 255" in result.detail
