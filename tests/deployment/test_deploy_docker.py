"""type: docker, against a stand-in docker CLI first on the runner's PATH (no engine needed)."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ai_agents.config.models import DeploymentConfig, DockerDeployConfig
from ai_agents.deployment import DeploymentFailedError, DeploymentManager

if TYPE_CHECKING:
    from conftest import FakeDocker, RunnerFactory

A, B, C = "aaaa1111", "bbbb2222", "cccc3333"
REG = "registry.example:5000"


def docker_config(tmp_path: Path, **overrides: object) -> DeploymentConfig:
    broken = shlex.quote(str(tmp_path / "broken-"))
    values: dict[str, object] = {
        "image": "shop", "registry": REG, "build_context": "app",
        "run_commands": ["docker rm -f shop", "docker run -d --name shop {image}"],
        # The health check fails for a commit whose broken-<commit> file exists.
        "check_command": f"test ! -e {broken}{{commit}}",
    }
    return DeploymentConfig(type="docker", command_timeout=20, docker=DockerDeployConfig(**{**values, **overrides}))


def test_build_tag_push_run_in_order_and_a_failing_check_rolls_back_to_the_previous_tag(
        tmp_path: Path, fake_docker: FakeDocker, make_runner: RunnerFactory) -> None:
    manager = DeploymentManager(docker_config(tmp_path), workdir=tmp_path, state=None,
                                runner=make_runner(path_prefix=fake_docker.bin_dir))
    record = manager.deploy(A)
    assert fake_docker.calls() == [
        f"build -t shop:{A} app",
        f"tag shop:{A} {REG}/shop:{A}",
        f"push {REG}/shop:{A}",
        "rm -f shop",
        f"run -d --name shop {REG}/shop:{A}",
    ]
    assert [s.phase for s in record.steps] == ["prepare"] * 3 + ["release"] * 2 + ["check"]
    assert f"pushed {REG}/shop:{A}" in record.detail
    manager.deploy(B)

    fake_docker.reset()
    (tmp_path / f"broken-{C}").touch()
    with pytest.raises(DeploymentFailedError, match=f"rolled back to {B}") as failed:
        manager.deploy(C)
    assert fake_docker.calls() == [
        f"build -t shop:{C} app",
        f"tag shop:{C} {REG}/shop:{C}",
        f"push {REG}/shop:{C}",
        "rm -f shop",
        f"run -d --name shop {REG}/shop:{C}",
        "rm -f shop",  # the rollback: run_commands again, with the previous tag
        f"run -d --name shop {REG}/shop:{B}",
    ]
    assert failed.value.record.rolled_back_to == B
    assert failed.value.record.steps[-1].phase == "rollback_check"
    status = manager.check_status()
    assert (status.state, status.current_commit) == ("rolled_back", B)


def test_a_failed_build_releases_nothing_and_rolls_nothing_back(tmp_path: Path, fake_docker: FakeDocker,
                                                                 make_runner: RunnerFactory) -> None:
    manager = DeploymentManager(docker_config(tmp_path), workdir=tmp_path, state=None,
                                runner=make_runner(path_prefix=fake_docker.bin_dir))
    manager.deploy(A)
    fake_docker.reset()
    fake_docker.fail("build")
    with pytest.raises(DeploymentFailedError, match="prepare step failed with exit code 1") as failed:
        manager.deploy(B)
    assert fake_docker.calls() == [f"build -t shop:{B} app"]
    assert "fake docker: build failed" in failed.value.record.steps[0].output_tail
    assert failed.value.record.rolled_back_to is None
    assert f"nothing was released; {A} is still live" in failed.value.record.detail
    status = manager.check_status()
    assert (status.state, status.current_commit) == ("failed", A)


def test_without_a_registry_nothing_is_pushed_and_the_local_tag_runs(tmp_path: Path, fake_docker: FakeDocker,
                                                                      make_runner: RunnerFactory) -> None:
    manager = DeploymentManager(docker_config(tmp_path, registry=None, check_command=None), workdir=tmp_path,
                                state=None, runner=make_runner(path_prefix=fake_docker.bin_dir))
    record = manager.deploy(A)
    assert fake_docker.calls() == [f"build -t shop:{A} app", "rm -f shop", f"run -d --name shop shop:{A}"]
    assert "no registry configured" in record.detail


def test_from_config_builds_a_minimal_env_without_api_keys(tmp_path: Path, fake_docker: FakeDocker) -> None:
    environ = {**os.environ, "PATH": f"{fake_docker.bin_dir}{os.pathsep}{os.environ['PATH']}",
               "HOME": str(tmp_path), "OPENAI_API_KEY": "sk-" + "proj-abcdefghijklmnopqrstuvwxyz"}
    manager = DeploymentManager.from_config(docker_config(tmp_path, check_command=None), tmp_path, None,
                                            environ=environ)
    manager.deploy(A)
    calls = fake_docker.calls()
    assert calls and not any("LEAKED" in c for c in calls)


def test_doctor_check_finds_the_cli_and_asks_the_engine(tmp_path: Path, fake_docker: FakeDocker,
                                                        make_runner: RunnerFactory) -> None:
    cfg = docker_config(tmp_path)
    ok = DeploymentManager(cfg, workdir=tmp_path, state=None,
                           runner=make_runner(path_prefix=fake_docker.bin_dir)).check()
    assert ok.ok and "99.0-fake" in ok.detail

    fake_docker.fail("info")
    down = DeploymentManager(cfg, workdir=tmp_path, state=None,
                             runner=make_runner(path_prefix=fake_docker.bin_dir)).check()
    assert not down.ok and "engine did not answer" in down.detail

    empty = tmp_path / "empty-bin"
    empty.mkdir()
    runner = make_runner()
    runner.env["PATH"] = str(empty)
    missing = DeploymentManager(cfg, workdir=tmp_path, state=None, runner=runner).check()
    assert not missing.ok and "not on PATH" in missing.detail
