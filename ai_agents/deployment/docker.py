"""``type: docker``: build an image tagged with the commit, push it, then run it."""

from __future__ import annotations

import shlex

from ai_agents.config.models import DockerDeployConfig
from ai_agents.deployment.records import DeployType, Phase
from ai_agents.deployment.steps import StepRecorder
from ai_agents.deployment.transport import LocalShell, substitute
from ai_agents.domain import CheckResult


def _names_a_registry(image: str) -> bool:
    """Docker's own rule: a first path component with a '.' or ':' (or 'localhost') is a registry host."""
    first, sep, _rest = image.partition("/")
    return bool(sep) and ("." in first or ":" in first or first == "localhost")


class DockerStrategy:
    """Through the docker CLI, locally (the engine is wherever ``DOCKER_HOST`` points).

    prepare: ``docker build -t IMAGE:COMMIT CONTEXT``, then ``docker tag`` for the
    registry and ``docker push`` (only when a registry is configured or the image
    name includes one: pushing a bare name would go to Docker Hub). release:
    ``run_commands`` with ``{image}`` = the pushed (or local) reference and
    ``{commit}``. check: ``check_command``. Every image keeps its commit tag, so a
    rollback re-runs ``run_commands`` with the previous commit's tag; no ``latest``
    tag is moved, so nothing needs un-moving.
    """

    type: DeployType = "docker"

    def __init__(self, cfg: DockerDeployConfig, shell: LocalShell):
        self.cfg = cfg
        self.shell = shell

    def local_ref(self, commit: str) -> str:
        return f"{self.cfg.image}:{commit}"

    def remote_ref(self, commit: str) -> str | None:
        if self.cfg.registry:
            return f"{self.cfg.registry.rstrip('/')}/{self.cfg.image}:{commit}"
        return self.local_ref(commit) if _names_a_registry(self.cfg.image) else None

    def run_ref(self, commit: str) -> str:
        return self.remote_ref(commit) or self.local_ref(commit)

    def deploy(self, commit: str, steps: StepRecorder) -> str:
        local, remote = self.local_ref(commit), self.remote_ref(commit)
        steps.run("prepare", self.shell, shlex.join(["docker", "build", "-t", local, self.cfg.build_context]))
        if remote is not None:
            if remote != local:
                steps.run("prepare", self.shell, shlex.join(["docker", "tag", local, remote]))
            steps.run("prepare", self.shell, shlex.join(["docker", "push", remote]))
        self._release(commit, steps, "release", "check")
        pushed = f"pushed {remote}" if remote else "no registry configured, image kept local"
        ran = "ran run_commands" if self.cfg.run_commands else "no run_commands configured, nothing started"
        return f"built {local}; {pushed}; {ran}"

    def rollback_unavailable(self) -> str | None:
        if self.cfg.run_commands:
            return None
        return "no deployment.docker.run_commands configured: nothing runs the image, so nothing to roll back"

    def rollback(self, target: str, steps: StepRecorder) -> str:
        self._release(target, steps, "rollback", "rollback_check")
        return f"rolled back to {self.run_ref(target)}"

    def _release(self, commit: str, steps: StepRecorder, phase: Phase, check_phase: Phase) -> None:
        values = {"image": self.run_ref(commit), "commit": commit}
        for command in self.cfg.run_commands:
            steps.run(phase, self.shell, substitute(command, **values))
        if self.cfg.check_command:
            steps.run(check_phase, self.shell, substitute(self.cfg.check_command, **values))

    def check(self) -> CheckResult:
        cli = self.shell.runner.which("docker")
        if cli is None:
            return CheckResult("deployment", False, "the docker CLI is not on PATH", {"type": "docker"})
        # The CLI alone cannot deploy: ask the engine too, briefly.
        result = self.shell.run("docker info --format '{{.ServerVersion}}'", timeout=15)
        data = {"type": "docker", "cli": cli, "exit_code": result.exit_code}
        if result.ok:
            return CheckResult("deployment", True, f"docker CLI {cli}, engine {result.output.strip()}", data)
        return CheckResult("deployment", False,
                           f"docker CLI {cli} found, but the engine did not answer: {result.output.strip()[-300:]}",
                           data)
