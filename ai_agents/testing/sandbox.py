"""How a test run is contained: the bubblewrap command line, the environment, the limits.

With bubblewrap the tests see a new, almost empty root with only what running tests needs:
``/usr`` and the ``/bin``, ``/sbin``, ``/lib*`` beside it, ``/etc`` without its secrets, the
interpreter and the workspace. ``/run``, ``/var/run``, ``/var/tmp``, ``/tmp`` and ``/dev/shm`` are
empty tmpfs, there is no ``/var/lib``, ``/home``, ``/opt`` or ``/srv``: no host unix socket
(``docker.sock``, systemd's private socket, a database's socket) exists inside, and a private
network namespace makes abstract sockets and every port unreachable. The workspace is writable
but its ``.git`` read-only (a planted hook would otherwise run in the daemon's own git calls), and
the daemon's home, config and data directories are empty tmpfs even when they lie inside something
bound (the workspace included).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# New user (when allowed), pid, network, IPC, UTS and cgroup namespaces; no capabilities even
# for root (bwrap keeps them for uid 0 otherwise); die with the daemon. The network namespace is
# what makes abstract unix sockets (and 127.0.0.1) of the host unreachable.
_ISOLATION = ("--die-with-parent", "--unshare-user-try", "--unshare-pid", "--unshare-net", "--unshare-ipc",
              "--unshare-uts", "--unshare-cgroup-try", "--cap-drop", "ALL")
# What a test run needs of the system, read-only. A merged-/usr symlink (/bin -> usr/bin) stays a symlink.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# Empty and private: where host sockets and shared scratch files live.
EMPTY_DIRS = ("/tmp", "/var/tmp", "/run", "/var/run", "/dev/shm")
# Secrets under /etc that may be world-readable; anything /etc holds that is not world-readable
# (shadow, ssh host keys, ssl/private, /etc/ai-agents) is hidden as well, found when the sandbox is built.
ETC_SECRETS = ("shadow", "shadow-", "gshadow", "gshadow-", "sudoers", "sudoers.d", "ssh", "ssl/private",
               "security/opasswd", "ai-agents", "credstore", "credstore.encrypted", "docker", "containerd",
               "npmrc", "pip.conf", "netrc", "wireguard", "NetworkManager/system-connections", "ppp",
               "kubernetes", "libvirt")


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


def _real(path: Path | str) -> Path:
    return Path(os.path.realpath(path))


def etc_secrets(etc: Path = Path("/etc")) -> list[Path]:
    """What to hide under ``etc``: :data:`ETC_SECRETS` and whatever is not world-readable.

    Walked on every sandboxed run (a file made unreadable since the last run is hidden too), so with
    ``os.scandir`` and plain strings: one ``lstat`` per entry, ~5 ms for a Debian /etc."""
    found = [etc / name for name in ETC_SECRETS if os.path.lexists(etc / name)]
    pruned = {str(p) for p in found}  # never descend into what is hidden anyway
    todo = [str(etc)]
    while todo:
        try:
            entries = os.scandir(todo.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                try:
                    mode = entry.stat(follow_symlinks=False).st_mode
                except OSError:
                    continue
                if stat.S_ISLNK(mode):
                    continue
                if not mode & stat.S_IROTH:
                    found.append(Path(entry.path))
                elif stat.S_ISDIR(mode) and entry.path not in pruned:
                    todo.append(entry.path)
    return list(dict.fromkeys(found))


def _system_binds() -> Iterator[str]:
    for name in SYSTEM_DIRS:
        if os.path.islink(name):
            yield from ("--symlink", os.readlink(name), name)
        elif os.path.isdir(name):
            yield from ("--ro-bind", name, name)
    if os.path.isdir("/etc"):
        yield from ("--ro-bind", "/etc", "/etc")
        for secret in etc_secrets():
            if secret.is_symlink():
                continue  # its target is outside /etc (not bound) or hidden in its own right
            # A directory becomes an empty tmpfs, a file an empty one.
            yield from (("--tmpfs", str(secret)) if secret.is_dir() else ("--ro-bind", "/dev/null", str(secret)))
    for name in EMPTY_DIRS:
        if name == "/var/run" and os.path.islink(name):
            yield from ("--symlink", "../run", name)
        else:
            yield from ("--tmpfs", name)
    yield from ("--dev", "/dev", "--proc", "/proc")


def bwrap_args(bwrap: str, workspace: Path, writable: Sequence[Path], hidden: Sequence[Path],
               keep_visible: Sequence[Path], read_only: Sequence[Path] = ()) -> list[str]:
    """The bwrap prefix for a command run in ``workspace``.

    ``writable``: extra directories bound read-write (the report directory).
    ``hidden``: directories replaced by an empty tmpfs wherever something bound holds them (the
    daemon's home, config and data directories; inside the workspace too).
    ``keep_visible``: what the run needs outside the system directories, read-only (the interpreter,
    its venv, node), wherever it lives: under /tmp, /root or a hidden directory as well.
    ``read_only``: paths inside the workspace the tests may read but not change (the clean-up's
    allow-list: what survives from one run to the next must not be writable by the code under test).
    """
    args = [bwrap, *_ISOLATION, *_system_binds()]
    system = [Path(p) for p in SYSTEM_DIRS]
    kept = [k for k in dict.fromkeys(_real(k) for k in keep_visible)
            if k.exists() and k != Path("/") and not _under(k, system)]
    for keep in kept:
        args += ["--ro-bind", str(keep), str(keep)]
    ws = _real(workspace)
    real_hidden = [h for h in dict.fromkeys(_real(h) for h in hidden if os.path.isdir(h)) if h != Path("/")]
    # Only where something bound holds it (data/ beside a bound venv, /etc/ai-agents): elsewhere it is absent.
    covered = [h for h in real_hidden if _under(h, [*kept, Path("/etc")]) and not _under(h, [ws])]
    for h in covered:
        args += ["--tmpfs", str(h)]
    for keep in kept:  # what the run needs strictly inside a directory just covered comes back
        if any(keep != h and keep.is_relative_to(h) for h in covered):
            args += ["--ro-bind", str(keep), str(keep)]
    args += ["--bind", str(ws), str(ws)]
    git_dir = ws / ".git"
    if git_dir.exists():
        args += ["--ro-bind", str(git_dir), str(git_dir)]
    # The interpreter's venv inside the workspace stays read-only; so does the clean-up's allow-list.
    for ro in dict.fromkeys([*(k for k in kept if _under(k, [ws])), *(_real(p) for p in read_only)]):
        if ro.exists() and ro != ws and _under(ro, [ws]):
            args += ["--ro-bind", str(ro), str(ro)]
    for h in real_hidden:  # the daemon's own directories inside the workspace (workspace_path: ".")
        if h != ws and _under(h, [ws]):
            args += ["--tmpfs", str(h)]
    for w in writable:
        real = os.path.realpath(w)
        args += ["--bind", real, real]
    return [*args, "--chdir", str(ws), "--"]


def probe_bwrap(bwrap: str, timeout: float = 10.0) -> str | None:
    """None if bwrap can create its namespaces here, else the reason it cannot (e.g. inside Docker)."""
    probe = [bwrap, *_ISOLATION, *_system_binds(), "--", "true"]
    try:
        proc = subprocess.run(probe, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"bwrap could not be started: {e}"
    if proc.returncode != 0:
        return f"bwrap cannot create a sandbox here: {proc.stderr.strip()[:300] or proc.returncode}"
    return None


class SandboxProbe:
    """Whether bubblewrap works here, probed once for all the runners sharing this object (the composition
    root gives one to all of them: the main workspace's, each task worktree's, the merge queue's). A probe
    is a bwrap start and a walk of /etc; before, each task's runner made its own. A failure is not kept:
    the next run probes again (a failed start is cheap, and one passing failure must not turn the sandbox
    off for good under ``sandbox: auto``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._working: str | None = None

    def __call__(self) -> tuple[str | None, str | None]:
        """(bwrap's path, why it cannot be used: None when it can)."""
        with self._lock:
            if self._working is not None:
                return self._working, None
            path = find_bwrap()
            why = probe_bwrap(path) if path else "bubblewrap (bwrap) is not installed"
            if why is None:
                self._working = path
            return path, why
