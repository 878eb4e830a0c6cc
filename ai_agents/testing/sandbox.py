"""How a test run is contained: the bubblewrap command line, the environment, the limits.

With bubblewrap the tests see a read-only copy of the machine with a private
/tmp, /proc and network namespace (no network), the workspace writable but its
``.git`` read-only (a planted hook would otherwise run in the daemon's own git
calls), and the daemon's home and data directories hidden behind empty tmpfs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# New user (when allowed), pid, network, IPC, UTS and cgroup namespaces; no capabilities even
# for root (bwrap keeps them for uid 0 otherwise); the machine read-only; die with the daemon.
_ISOLATION = ("--die-with-parent", "--unshare-user-try", "--unshare-pid", "--unshare-net", "--unshare-ipc",
              "--unshare-uts", "--unshare-cgroup-try", "--cap-drop", "ALL",
              "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc")


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int
    memory_mb: int
    max_processes: int
    max_file_mb: int

    def rlimits(self, *, address_space: bool = True) -> dict[str, list[int]]:
        """setrlimit values for the launcher. ``address_space`` False uses RLIMIT_DATA instead of
        RLIMIT_AS (V8 reserves gigabytes of address space it never uses, so node dies under RLIMIT_AS)."""
        mem = self.memory_mb * 1024 * 1024
        limits = {
            # soft -> SIGXCPU (catchable), hard a little later -> SIGKILL.
            "RLIMIT_CPU": [self.cpu_seconds, self.cpu_seconds + 5],
            "RLIMIT_NPROC": [self.max_processes, self.max_processes],
            "RLIMIT_FSIZE": [self.max_file_mb * 1024 * 1024] * 2,
            "RLIMIT_CORE": [0, 0],
        }
        limits["RLIMIT_AS" if address_space else "RLIMIT_DATA"] = [mem, mem]
        return limits


def minimal_env(home: Path, tmp: Path, extra_path: Sequence[str] = ()) -> dict[str, str]:
    """The whole environment of a test run. Nothing is inherited from the daemon: no keys, no tokens."""
    path_dirs = [os.path.dirname(sys.executable), *extra_path, BASE_PATH]
    return {
        "PATH": ":".join(dict.fromkeys(p for p in path_dirs if p)),
        "HOME": str(home),
        "TMPDIR": str(tmp),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "CI": "true",  # jest: no watch mode, no interactive output
        "NO_COLOR": "1",  # plain text in output_tail, which ends up in prompts
        "FORCE_COLOR": "0",
    }


def find_bwrap() -> str | None:
    return shutil.which("bwrap")


def _under(path: Path, parents: Sequence[Path]) -> bool:
    return any(path == p or path.is_relative_to(p) for p in parents)


def bwrap_args(bwrap: str, workspace: Path, writable: Sequence[Path], hidden: Sequence[Path],
               keep_visible: Sequence[Path]) -> list[str]:
    """The bwrap prefix for a command run in ``workspace``.

    ``writable``: extra directories bound read-write (the report directory).
    ``hidden``: directories replaced by an empty tmpfs (home, data directory).
    ``keep_visible``: read-only re-binds of things under ``hidden`` the run needs (the interpreter).
    """
    private = [Path("/tmp"), Path("/dev/shm")]
    args = [bwrap, *_ISOLATION, *(a for p in private for a in ("--tmpfs", str(p)))]
    real_hidden = [Path(os.path.realpath(h)) for h in hidden if os.path.isdir(h)]
    for h in dict.fromkeys(real_hidden):
        if h != Path("/"):
            args += ["--tmpfs", str(h)]
    # The interpreter may live anywhere, /tmp included (a checkout with its venv there):
    # put it back, read-only, wherever an empty tmpfs now covers it.
    for keep in dict.fromkeys(Path(os.path.realpath(k)) for k in keep_visible):
        if keep.exists() and _under(keep, [*real_hidden, *private]):
            args += ["--ro-bind", str(keep), str(keep)]
    ws = Path(os.path.realpath(workspace))
    args += ["--bind", str(ws), str(ws)]
    git_dir = ws / ".git"
    if git_dir.exists():
        args += ["--ro-bind", str(git_dir), str(git_dir)]
    for w in writable:
        real = os.path.realpath(w)
        args += ["--bind", real, real]
    return [*args, "--chdir", str(ws), "--"]


def probe_bwrap(bwrap: str, timeout: float = 10.0) -> str | None:
    """None if bwrap can create its namespaces here, else the reason it cannot (e.g. inside Docker)."""
    probe = [bwrap, *_ISOLATION, "--", "true"]
    try:
        proc = subprocess.run(probe, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"bwrap could not be started: {e}"
    if proc.returncode != 0:
        return f"bwrap cannot create a sandbox here: {proc.stderr.strip()[:300] or proc.returncode}"
    return None
