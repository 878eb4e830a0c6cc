"""Crash-safe file replacement: temp file in the same directory, fsync, rename, fsync the directory."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

from ai_agents.file_system.find import TEMP_MARKER

_DEFAULT_MODE = 0o644


def temp_name(target: Path) -> Path:
    """The temp file for ``target``: hidden, marked so walks and recovery recognise it."""
    return target.with_name(f".{target.name}{TEMP_MARKER}{secrets.token_hex(6)}")


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # e.g. Windows: directory fsync is not available
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_temp(target: Path, data: bytes, mode: int) -> Path:
    """The complete, fsynced temp file for ``target`` (removed again if writing it fails)."""
    tmp = temp_name(target)
    # O_EXCL + O_NOFOLLOW: never write through something that appeared at the temp name.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return tmp


def atomic_write_bytes(target: Path, data: bytes, replace: Callable[[Path, Path], None] = os.replace) -> None:
    """Write ``data`` to ``target`` so a reader sees either the old or the new file, never a part.

    ``replace`` is the rename step; tests pass a failing one to simulate a crash there.
    """
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = _DEFAULT_MODE
    tmp = _write_temp(target, data, mode)
    try:
        replace(tmp, target)
    except BaseException:
        # Leave nothing behind: the target still holds its previous content.
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(target.parent)


def atomic_create_bytes(target: Path, data: bytes) -> None:
    """Like :func:`atomic_write_bytes` but fail with FileExistsError if ``target`` exists, race-free.

    The complete temp file is hard-linked to the target name: link() never replaces.
    """
    tmp = _write_temp(target, data, _DEFAULT_MODE)
    try:
        os.link(tmp, target, follow_symlinks=False)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    fsync_dir(target.parent)
