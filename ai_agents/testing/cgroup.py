"""A throw-away pids cgroup per test run: the process limit that holds even for root.

RLIMIT_NPROC is not enforced for uid 0 (the kernel exempts the root user, user
namespace or not), so a daemon running as root needs a pids cgroup to stop a fork
bomb. We use one when the machine lets us create it (cgroup v1 ``pids``
hierarchy, or v2 with ``pids`` delegated to our cgroup); otherwise ``create``
returns None and the caller reports that the process limit rests on RLIMIT_NPROC.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from pathlib import Path

import structlog

log = structlog.get_logger("ai_agents.testing")


def _candidate_parents() -> list[Path]:
    """Directories under which we may create a child cgroup with a pids limit."""
    try:
        mountinfo = Path("/proc/self/mountinfo").read_text().splitlines()
        own = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return []
    v1_mounts, v2_mounts = [], []
    for line in mountinfo:
        left, _, right = line.partition(" - ")
        fstype, _source, options = ([*right.split(), "", "", ""])[:3]
        mount_point = left.split()[4]
        if fstype == "cgroup" and "pids" in options.split(","):
            v1_mounts.append(Path(mount_point))
        elif fstype == "cgroup2":
            v2_mounts.append(Path(mount_point))
    parents = []
    for line in own:
        hier, controllers, path = ([*line.split(":", 2), "", ""])[:3]
        rel = path.lstrip("/")
        if "pids" in controllers.split(","):
            parents += [m / rel for m in v1_mounts]
        elif hier == "0" and controllers == "":
            parents += [m / rel for m in v2_mounts]
    return parents


class PidsCgroup:
    """One cgroup holding one test run: a process limit, a complete kill, then removal."""

    def __init__(self, path: Path):
        self.path = path
        self.procs_file = path / "cgroup.procs"

    @classmethod
    def create(cls, max_pids: int) -> PidsCgroup | None:
        for parent in _candidate_parents():
            path = parent / f"ai-agents-tests-{uuid.uuid4().hex[:12]}"
            try:
                path.mkdir()
            except OSError:
                continue  # not ours to write (read-only cgroupfs, no delegation)
            try:
                (path / "pids.max").write_text(f"{max_pids}\n")
                return cls(path)
            except OSError:
                # No pids controller here (v2 without delegation): pids.max does not exist.
                with contextlib.suppress(OSError):
                    path.rmdir()
        return None

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in self.procs_file.read_text().split()]
        except (OSError, ValueError):
            return []

    def kill_all(self, within: float = 5.0) -> bool:
        """SIGKILL every process in the cgroup until it is empty; True if it emptied."""
        kill_file = self.path / "cgroup.kill"  # v2 (Linux 5.14+): one atomic write
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            pids = self.pids()
            if not pids:
                return True
            if kill_file.exists():
                with contextlib.suppress(OSError):
                    kill_file.write_text("1\n")
            else:
                # pids.max stops new forks, so repeating this converges.
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)
        log.error("test_cgroup_not_empty", cgroup=str(self.path), pids=self.pids()[:20])
        return False

    def remove(self) -> None:
        for _ in range(100):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.01)  # zombies still being reaped
        log.warning("test_cgroup_not_removed", cgroup=str(self.path))
