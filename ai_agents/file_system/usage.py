"""Disk use of a directory tree, counted the way the workspace and worktree caps need it."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path


def tree_usage(root: Path, *, stop_bytes: int, stop_files: int | None = None,
               skip: Iterable[Path] = ()) -> tuple[int, int]:
    """(entries, bytes on disk) under ``root``, symlinks not followed, ``skip`` paths left out. The walk
    stops as soon as ``stop_bytes`` (or ``stop_files`` entries) is passed: a cap check needs no more."""
    skipped = set(skip)
    files = used = 0
    stack = [root]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            if Path(entry.path) in skipped:
                continue
            files += 1
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            used += info.st_blocks * 512
            if stat.S_ISDIR(info.st_mode):
                stack.append(Path(entry.path))
            if used > stop_bytes or (stop_files is not None and files > stop_files):
                return files, used
    return files, used
