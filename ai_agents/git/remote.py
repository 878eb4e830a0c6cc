"""Network operations: clone, fetch, push and ls-remote with bounded, exponential retries.

A remote that cannot be reached ends in :class:`GitRemoteError` (transient: the
orchestrator retries later). A push the remote *rejects* (non-fast-forward) is
not transient and ends in :class:`GitOperationError` at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

import git
import structlog

from ai_agents.errors import GitOperationError, GitRemoteError
from ai_agents.git.cmd import GitCmd
from ai_agents.git.credentials import Credentials, redact_url

log = structlog.get_logger("ai_agents.git")
T = TypeVar("T")

_REJECTED_WORDS = ("non-fast-forward", "fetch first", "[rejected]", "stale info", "protected branch")
_BAD_PUSH_FLAGS = (git.PushInfo.ERROR | git.PushInfo.REJECTED | git.PushInfo.REMOTE_REJECTED
                   | git.PushInfo.REMOTE_FAILURE)


class _RejectedError(Exception):
    """A definitive refusal by the remote: retrying cannot help."""


class RemoteOps:
    def __init__(self, cmd: GitCmd, credentials: Credentials, *, retries: int, base_delay: float,
                 timeout: float, sleep: Callable[[float], None] = time.sleep):
        self.cmd = cmd
        self.credentials = credentials
        self.retries = retries
        self.base_delay = base_delay
        self.timeout = timeout
        self._sleep = sleep

    def _retry(self, what: str, fn: Callable[[dict[str, str]], T]) -> T:
        """Call ``fn(env)`` up to 1 + retries times, waiting base_delay * 2^n between tries."""
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                delay = min(self.base_delay * 2 ** (attempt - 1), 60.0)
                log.warning("git_remote_retry", operation=what, attempt=attempt + 1, wait_seconds=delay,
                            error=redact_url(str(last))[:300])
                self._sleep(delay)
            with self.credentials.for_call() as (env, config):
                try:
                    return fn(self.cmd.env(config=config, extra=env))
                except _RejectedError as e:
                    raise GitOperationError(f"{what} was rejected by the remote: {e}") from e
                except (git.GitCommandError, GitOperationError, OSError) as e:
                    last = e
        raise GitRemoteError(f"{what} failed after {self.retries + 1} attempts: "
                             f"{redact_url(_short(last))}") from last

    def clone(self, url: str, path: Path) -> git.Repo:
        def attempt(env: dict[str, str]) -> git.Repo:
            if path.exists() and any(path.iterdir()):
                # A half-finished clone from a failed attempt: start again from nothing.
                raise GitOperationError(f"{path} is not empty")
            return git.Repo.clone_from(url, str(path), env=env, kill_after_timeout=self.timeout)
        return self._retry(f"clone of {redact_url(url)}", attempt)

    def fetch(self, remote: str) -> None:
        def attempt(env: dict[str, str]) -> None:
            result = self.cmd.run("fetch", "--prune", remote, env=env, timeout=self.timeout, check=False)
            if not result.ok:
                raise GitOperationError(self.cmd.explain(result))
        self._retry(f"fetch from {remote}", attempt)

    def push(self, repo: git.Repo, remote_name: str, branch: str) -> None:
        refspec = f"refs/heads/{branch}:refs/heads/{branch}"

        def attempt(env: dict[str, str]) -> None:
            try:
                infos = repo.remote(remote_name).push(refspec, env=env, kill_after_timeout=self.timeout)
            except git.GitCommandError as e:
                if any(w in str(e.stderr) for w in _REJECTED_WORDS):
                    raise _RejectedError(_short(e)) from e
                raise
            # Per-ref verdicts first: a rejection is definitive, whatever the exit status says.
            for info in infos:
                if info.flags & (git.PushInfo.REJECTED | git.PushInfo.REMOTE_REJECTED):
                    raise _RejectedError(f"{branch}: {info.summary.strip()} (pull first)")
                if info.flags & _BAD_PUSH_FLAGS:
                    raise GitOperationError(f"{branch}: {info.summary.strip()}")
            # GitPython does not raise on a failed push by itself.
            infos.raise_if_error()
            if not infos:
                raise GitOperationError("git push reported no result")
        self._retry(f"push of {branch} to {remote_name}", attempt)

    def push_lease(self, remote: str, sha: str, branch: str, expect: str | None) -> bool:
        """Set the remote's ``branch`` to ``sha`` only if it is still ``expect`` (None: absent).

        A compare-and-swap (``--force-with-lease``): True when pushed, False when the remote's branch
        was not ``expect`` (someone else moved it; nothing changed). Unreachable: GitRemoteError.
        """
        lease = f"--force-with-lease=refs/heads/{branch}:{expect or ''}"

        def attempt(env: dict[str, str]) -> bool:
            result = self.cmd.run("push", "--porcelain", lease, remote, f"{sha}:refs/heads/{branch}", env=env,
                                  timeout=self.timeout, check=False)
            verdicts = [ln for ln in result.stdout.splitlines() if ln[:2] in ("!\t", " \t", "+\t", "*\t", "=\t")]
            if any(ln.startswith("!") for ln in verdicts):
                # "failed to update ref"/"cannot lock ref": another push moved or held the ref at that
                # instant (two nodes racing on one remote): nothing changed, like a lost lease.
                if any(w in ln for ln in verdicts for w in ("stale info", "fetch first", "non-fast-forward",
                                                             "already exists", "failed to update ref",
                                                             "cannot lock ref")):
                    return False
                raise _RejectedError(" / ".join(verdicts)[:300])
            if not result.ok or not verdicts:
                raise GitOperationError(self.cmd.explain(result))
            return True
        return self._retry(f"push of {branch} to {remote}", attempt)

    def delete_leased(self, remote: str, leases: Mapping[str, str]) -> list[str]:
        """Delete each of the remote's branches (name -> sha) only while it still points at that sha: one
        push, a ``--force-with-lease`` per branch. The deleted ones; a branch that moved (or is gone) is
        left as it is. Unreachable: GitRemoteError."""
        if not leases:
            return []
        args = [f"--force-with-lease=refs/heads/{branch}:{sha}" for branch, sha in leases.items()]

        def attempt(env: dict[str, str]) -> list[str]:
            result = self.cmd.run("push", "--porcelain", *args, remote, *(f":refs/heads/{b}" for b in leases),
                                  env=env, timeout=self.timeout, check=False)
            verdicts = [ln.split("\t") for ln in result.stdout.splitlines() if ln[:2] in ("-\t", "!\t")]
            if not verdicts:
                raise GitOperationError(self.cmd.explain(result))
            return [v[1].split(":refs/heads/", 1)[1] for v in verdicts if v[0] == "-" and ":refs/heads/" in v[1]]
        return self._retry(f"deletion of {len(leases)} branches on {remote}", attempt)

    def ls_remote(self, remote: str, timeout: float) -> str:
        """One quick reachability probe, no retries (used by doctor)."""
        with self.credentials.for_call() as (env, config):
            result = self.cmd.run("ls-remote", "--heads", remote, env=env, config=config, timeout=timeout,
                                  check=False)
        if not result.ok:
            raise GitRemoteError(f"remote {remote} is not reachable: {self.cmd.explain(result)}")
        return result.stdout


def _short(e: BaseException | None) -> str:
    if e is None:
        return "unknown error"
    text = getattr(e, "stderr", None) or str(e)
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return " / ".join(lines[-3:])[:500] or type(e).__name__
