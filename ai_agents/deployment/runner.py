"""Run one deployment command: bounded in time, in a minimal environment, output captured.

Deploy commands come from config.yaml and run with the daemon's privileges, so the
child never sees the daemon's environment (which holds LLM API keys and git
tokens): :func:`minimal_env` keeps only what a shell, ssh and the docker CLI need.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

# What a shell, ssh (HOME for ~/.ssh, the agent socket) and the docker CLI (engine
# address, config dir holding registry logins) need. Nothing else is passed on.
ENV_ALLOWLIST: tuple[str, ...] = (
    "PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "LOGNAME",
    "SSH_AUTH_SOCK",
    "DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CONTEXT", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY",
)
# A name that looks like a credential is never passed on, even when asked for by name.
_SECRET_NAME = re.compile(r"(?i)(KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH(?!_SOCK))")


def minimal_env(source: Mapping[str, str], *, extra: Sequence[str] = ()) -> dict[str, str]:
    """Copy the allow-listed variables (plus ``extra`` names) from ``source``; never credentials."""
    env = {}
    for name in (*ENV_ALLOWLIST, *extra):
        if name in source and not _SECRET_NAME.search(name):
            env[name] = source[name]
    env.setdefault("PATH", os.defpath)
    env.setdefault("LANG", "C.UTF-8")
    return env


@dataclass(frozen=True)
class CommandResult:
    """What one command did. ``exit_code`` is negative when a signal ended it (as in subprocess)."""

    exit_code: int
    output: str
    timed_out: bool = False
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


class CommandRunner:
    """Runs an argv, or a shell string through ``/bin/sh -c``, with a timeout, env and cwd.

    stdout and stderr are merged into a temporary file rather than a pipe: a
    background grandchild that keeps a pipe open can then never hang us, and a
    chatty command cannot fill memory (only the last ``max_output`` bytes are read).
    On timeout the whole process group gets SIGTERM, then SIGKILL after ``kill_grace``.
    """

    def __init__(self, env: Mapping[str, str], *, timeout: float = 600.0, max_output: int = 64_000,
                 kill_grace: float = 2.0):
        self.env = dict(env)
        self.timeout = timeout
        self.max_output = max_output
        self.kill_grace = kill_grace

    def which(self, name: str) -> str | None:
        """Where ``name`` is found on the runner's PATH (not the daemon's)."""
        return shutil.which(name, path=self.env.get("PATH", os.defpath))

    def run(self, command: str | Sequence[str], *, timeout: float | None = None,
            cwd: Path | None = None) -> CommandResult:
        """Run and wait. Never raises for a failing command: the result says what happened."""
        argv = ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)
        limit = self.timeout if timeout is None else timeout
        started = time.monotonic()
        with tempfile.TemporaryFile() as out:
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                        cwd=cwd, env=self.env, start_new_session=True)
            except OSError as e:
                # Report it the way a shell would (127: not found, 126: cannot execute),
                # so a missing ssh or docker reads like any other failed step.
                code = 127 if isinstance(e, FileNotFoundError) else 126
                return CommandResult(code, f"cannot run {argv[0]!r}: {e}", False, time.monotonic() - started)
            timed_out = False
            try:
                code = proc.wait(timeout=limit)
            except subprocess.TimeoutExpired:
                timed_out = True
                code = self._kill_group(proc)
            output = self._tail(out)
        if timed_out:
            output += f"\n[killed after {limit:g}s timeout]"
        return CommandResult(code, output, timed_out, time.monotonic() - started)

    def _kill_group(self, proc: subprocess.Popen) -> int:
        # start_new_session made the child a group leader, so its pid is the group id.
        self._signal_group(proc.pid, signal.SIGTERM)
        # Ignoring SIGTERM past the grace period is answered by the SIGKILL below.
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=self.kill_grace)
        # Even when the leader exited on SIGTERM, members that ignored it must go too.
        self._signal_group(proc.pid, signal.SIGKILL)
        return proc.wait()

    @staticmethod
    def _signal_group(pgid: int, sig: signal.Signals) -> None:
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return  # the whole group has already exited: nothing left to stop

    def _tail(self, out: IO[bytes]) -> str:
        size = out.seek(0, os.SEEK_END)
        skipped = max(0, size - self.max_output)
        out.seek(skipped)
        text = out.read().decode("utf-8", errors="replace")
        return f"[... {skipped} bytes truncated ...]\n{text}" if skipped else text
