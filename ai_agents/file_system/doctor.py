"""``doctor`` check for the workspace: present, writable, enough free space."""

from __future__ import annotations

import os
import shutil
import tempfile

from ai_agents.domain import CheckResult
from ai_agents.file_system.manager import FileSystemManager

# Below this the daemon would soon fail mid-write (backups double the space a change needs).
MIN_FREE_MB = 100


def check_workspace(fs: FileSystemManager, min_free_mb: int = MIN_FREE_MB) -> CheckResult:
    """Is the workspace a writable directory with at least ``min_free_mb`` MB free?"""
    root = fs.workspace_path
    data: dict[str, object] = {"path": str(root)}
    if not root.is_dir():
        return CheckResult("workspace", False, f"{root} is not a directory", data)
    try:
        fd, probe = tempfile.mkstemp(dir=root, prefix=".doctor-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        return CheckResult("workspace", False, f"{root} is not writable: {e.strerror or e}", data)
    free_mb = shutil.disk_usage(root).free // (1024 * 1024)
    data["free_mb"] = free_mb
    if free_mb < min_free_mb:
        return CheckResult("workspace", False, f"only {free_mb} MB free in {root} (need {min_free_mb})", data)
    return CheckResult("workspace", True, f"{root} is writable, {free_mb} MB free", data)
