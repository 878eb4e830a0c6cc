"""Run one git command in the repository with a safe, per-call configuration.

Nothing here touches ``os.environ`` or the current directory: each call gets
its own environment (merged over the process environment, as GitPython does) and
git runs with ``cwd`` set to the repository. Configuration is passed through
``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_n`` so it also reaches commands GitPython
starts for us (push, fetch) and is never written to ``.git/config``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import git

from ai_agents.errors import GitOperationError
from ai_agents.git.credentials import redact_url

# Test code in the workspace is untrusted: if it ever wrote a hook or an fsmonitor
# command into .git, the daemon's own git calls must not run it.
SAFE_CONFIG: tuple[tuple[str, str], ...] = (
    ("core.hooksPath", "/dev/null"),
    ("core.fsmonitor", "false"),
    ("commit.gpgSign", "false"),
    ("tag.gpgSign", "false"),
    ("core.pager", "cat"),
    ("core.quotePath", "false"),
    ("advice.detachedHead", "false"),
    ("rebase.autoStash", "false"),
    ("merge.autoStash", "false"),
)
SAFE_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_EDITOR": "true",  # never open an editor nobody sees
    "GIT_MERGE_AUTOEDIT": "no",
    "GIT_LITERAL_PATHSPECS": "1",  # a file named ':(glob)*' is a file name, not magic
    "GIT_OPTIONAL_LOCKS": "0",  # status must not take index.lock just to refresh stat data
}


@dataclass(frozen=True)
class GitResult:
    status: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.status == 0


def config_env(config: Iterable[tuple[str, str]]) -> dict[str, str]:
    items = list(config)
    env = {"GIT_CONFIG_COUNT": str(len(items))}
    for i, (key, value) in enumerate(items):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    return env


class GitCmd:
    """git commands for one repository directory."""

    def __init__(self, repo_path: Path, default_timeout: float = 120.0):
        self.path = Path(repo_path)
        self.default_timeout = default_timeout

    def env(self, *, config: Iterable[tuple[str, str]] = (), extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The per-call environment: safe defaults, config via GIT_CONFIG_*, then ``extra``."""
        # Never discover a repository above repo_path: a workspace that is not (yet) a
        # repository must not make us commit to, or clean, the checkout that contains it.
        ceiling = {"GIT_CEILING_DIRECTORIES": str(self.path.absolute().parent)}
        return {**SAFE_ENV, **ceiling, **config_env([*SAFE_CONFIG, *config]), **(extra or {})}

    def run(self, *args: str, config: Iterable[tuple[str, str]] = (), env: Mapping[str, str] | None = None,
            timeout: float | None = None, check: bool = True, cwd: Path | None = None) -> GitResult:
        """Run ``git <args>``; with ``check`` a non-zero exit raises GitOperationError.

        A plain child process (the executable GitPython is configured with), waited for with the standard
        library's timeout: GitPython's ``execute`` starts a watchdog thread for every call that has one, and
        the daemon makes ~80 git calls per task. Past ``timeout`` the command's whole process group is
        killed (git's own children too) and the result says so."""
        workdir = Path(cwd or self.path)
        if not workdir.is_dir():
            raise GitOperationError(f"{workdir} does not exist or is not a directory")
        limit = timeout or self.default_timeout
        argv = [git.Git.GIT_PYTHON_GIT_EXECUTABLE or "git", *args]
        # As GitPython ran it: the process environment, messages in English, then the per-call settings.
        full_env = {**os.environ, "LANGUAGE": "C", "LC_ALL": "C", **self.env(config=config, extra=env)}
        try:
            proc = subprocess.Popen(argv, cwd=workdir, env=full_env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        except OSError as e:
            raise GitOperationError(f"git could not be started: {e}") from e
        try:
            out, err = proc.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            self._kill(proc)
            out, err = proc.communicate()
            err += f"\nTimeout: git {args[0] if args else ''} did not complete in {limit:g} seconds".encode()
        except BaseException:
            self._kill(proc)
            proc.wait()
            raise
        result = GitResult(proc.returncode, out.decode("utf-8", errors="replace"),
                           redact_url(err.decode("utf-8", errors="replace").rstrip("\n")))
        if check and not result.ok:
            raise GitOperationError(f"git {args[0]} failed: {self.explain(result)}")
        return result

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)

    @staticmethod
    def explain(result: GitResult) -> str:
        """The last meaningful lines of git's complaint, for an error message."""
        lines = [ln.strip() for ln in (result.stderr or result.stdout).splitlines()
                 if ln.strip() and not ln.startswith("hint:")]
        return " / ".join(lines[-4:]) or f"exit status {result.status}"
