"""Where configured shell commands run: here (``local``) or on the deploy host over ssh."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Protocol

from ai_agents.deployment.runner import CommandResult, CommandRunner


def substitute(template: str, **values: str) -> str:
    """Replace ``{name}`` placeholders with shell-quoted values.

    Plain replacement, not ``str.format``: configured commands legitimately hold
    other braces (``${VAR}``, ``awk '{print $1}'``) that must pass through untouched.
    """
    for name, value in values.items():
        template = template.replace("{" + name + "}", shlex.quote(value))
    return template


class Shell(Protocol):
    """Runs one shell command string somewhere and says where (for the record)."""

    target: str

    def run(self, command: str, *, timeout: float | None = None) -> CommandResult: ...


class LocalShell:
    """``/bin/sh -c`` on this machine, in ``cwd`` (the workspace)."""

    def __init__(self, runner: CommandRunner, cwd: Path):
        self.runner = runner
        self.cwd = cwd
        self.target = "local"

    def run(self, command: str, *, timeout: float | None = None) -> CommandResult:
        return self.runner.run(command, timeout=timeout, cwd=self.cwd)


class SshShell:
    """The remote user's shell on ``host``, one non-interactive ssh connection per command.

    BatchMode makes a missing key fail at once instead of waiting for a password
    prompt nobody will answer. With ``known_hosts`` the host key must already be in
    that file (StrictHostKeyChecking=yes); without it a new host's key is accepted
    and remembered (accept-new: trust on first use) in ``$HOME/.ssh/known_hosts``
    of the runner's env. That file is named explicitly because ssh itself takes
    ``~`` from the passwd entry and ignores ``$HOME``.
    """

    def __init__(self, runner: CommandRunner, *, host: str, port: int = 22, user: str | None = None,
                 key_path: Path | None = None, known_hosts: Path | None = None, connect_timeout: float = 10.0):
        self.runner = runner
        self.host = host
        self.port = port
        self.user = user
        self.key_path = key_path
        self.known_hosts = known_hosts
        self.connect_timeout = connect_timeout
        home = runner.env.get("HOME")
        self.tofu_known_hosts = (Path(home) if home else Path.home()) / ".ssh" / "known_hosts"
        self.target = f"ssh {user + '@' if user else ''}{host}:{port}"

    @property
    def trusts_on_first_use(self) -> bool:
        return self.known_hosts is None

    def argv(self, command: str) -> list[str]:
        argv = ["ssh", "-n", "-p", str(self.port),
                "-o", "BatchMode=yes",
                "-o", f"ConnectTimeout={max(1, round(self.connect_timeout))}",
                # ssh's own warnings ("Permanently added ...") would clutter every step's output.
                "-o", "LogLevel=ERROR"]
        if self.known_hosts is not None:
            argv += ["-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={self.known_hosts}"]
        else:
            argv += ["-o", "StrictHostKeyChecking=accept-new", "-o", f"UserKnownHostsFile={self.tofu_known_hosts}"]
        if self.key_path is not None:
            # Only the configured key: an agent offering many keys can hit MaxAuthTries first.
            argv += ["-i", str(self.key_path), "-o", "IdentitiesOnly=yes"]
        if self.user:
            argv += ["-l", self.user]
        # "--" so a host name can never be read as an option.
        return [*argv, "--", self.host, command]

    def run(self, command: str, *, timeout: float | None = None) -> CommandResult:
        if self.trusts_on_first_use:
            # ssh does not create the directory of an explicit UserKnownHostsFile.
            self.tofu_known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self.runner.run(self.argv(command), timeout=timeout)
