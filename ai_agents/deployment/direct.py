"""``type: direct``: run the configured commands on the host, over ssh or locally."""

from __future__ import annotations

from ai_agents.config.models import DirectDeployConfig
from ai_agents.deployment.records import DeployType
from ai_agents.deployment.steps import StepRecorder
from ai_agents.deployment.transport import Shell, SshShell, substitute
from ai_agents.domain import CheckResult


class DirectStrategy:
    """``deploy_commands`` then ``check_command``; rollback = ``rollback_commands`` then the check again.

    ``{commit}`` in every command is the shell-quoted commit being deployed (for a
    rollback: the previous good commit). Every command is a release step: each
    one may already have changed the host, so any failure warrants a rollback.
    """

    type: DeployType = "direct"

    def __init__(self, cfg: DirectDeployConfig, shell: Shell):
        self.cfg = cfg
        self.shell = shell

    def deploy(self, commit: str, steps: StepRecorder) -> str:
        for command in self.cfg.deploy_commands:
            steps.run("release", self.shell, substitute(command, commit=commit))
        if self.cfg.check_command:
            steps.run("check", self.shell, substitute(self.cfg.check_command, commit=commit))
        checked = "check passed" if self.cfg.check_command else "no check_command configured"
        return f"deployed {commit} on {self.shell.target} ({checked}){self._tofu_note()}"

    def rollback_unavailable(self) -> str | None:
        return None if self.cfg.rollback_commands else "no deployment.direct.rollback_commands configured"

    def rollback(self, target: str, steps: StepRecorder) -> str:
        for command in self.cfg.rollback_commands:
            steps.run("rollback", self.shell, substitute(command, commit=target))
        if self.cfg.check_command:
            steps.run("rollback_check", self.shell, substitute(self.cfg.check_command, commit=target))
        return f"rolled back to {target} on {self.shell.target}"

    def check(self) -> CheckResult:
        if not isinstance(self.shell, SshShell):
            return CheckResult("deployment", True, "direct deployment runs its commands locally (transport: local)",
                               {"type": "direct", "transport": "local"})
        problems = [f"{name} {path} does not exist" for name, path in
                    (("key_path", self.cfg.key_path), ("known_hosts", self.cfg.known_hosts))
                    if path is not None and not path.exists()]
        if problems:
            return CheckResult("deployment", False, "; ".join(problems), {"type": "direct"})
        # `true` proves reachability, host key and login in one connection, and changes nothing.
        result = self.shell.run("true", timeout=self.shell.connect_timeout + 5)
        data = {"type": "direct", "target": self.shell.target, "exit_code": result.exit_code}
        if result.ok:
            return CheckResult("deployment", True, f"{self.shell.target} reachable{self._tofu_note()}", data)
        why = "timed out" if result.timed_out else f"exit {result.exit_code}: {result.output.strip()[-300:]}"
        return CheckResult("deployment", False, f"ssh to {self.shell.target} failed ({why})", data)

    def _tofu_note(self) -> str:
        if isinstance(self.shell, SshShell) and self.shell.trusts_on_first_use:
            return ("; no known_hosts configured, so the host key is trusted on first use "
                    f"(StrictHostKeyChecking=accept-new, remembered in {self.shell.tofu_known_hosts})")
        return ""
