"""Timestamped copies of a file's previous version, pruned by age."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import structlog

log = structlog.get_logger("ai_agents.file_system")

# Pruning walks the whole backup tree; doing it on every write would be wasteful.
_PRUNE_EVERY_SECONDS = 600.0


class BackupStore:
    """Keeps ``<backup_dir>/<rel dir>/<name>.<UTC stamp>.bak`` copies for ``retention_days``."""

    def __init__(self, backup_dir: Path, retention_days: float, *, clock: Callable[[], float] = time.time):
        self.backup_dir = Path(backup_dir)
        self.retention_seconds = retention_days * 86400
        self._clock = clock
        self._lock = threading.Lock()
        self._last_prune = float("-inf")

    def backup(self, source: Path, rel: PurePosixPath) -> Path:
        """Copy ``source`` (the current version of ``rel``) into the store; return the copy's path."""
        folder = self.backup_dir.joinpath(*rel.parent.parts)
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        data = source.read_bytes()
        for n in range(1000):
            suffix = "" if n == 0 else f"-{n}"
            target = folder / f"{rel.name}.{stamp}{suffix}.bak"
            try:
                # "x": two writes within the same microsecond must not overwrite each other.
                with open(target, "xb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                break
            except FileExistsError:
                continue
        else:  # pragma: no cover - a thousand collisions in one microsecond
            raise FileExistsError(f"no free backup name for {rel}")
        log.debug("file_backed_up", path=str(rel), backup=str(target))
        self.maybe_prune()
        return target

    def backups_of(self, rel: PurePosixPath) -> list[Path]:
        """Existing backups of ``rel``, oldest first."""
        folder = self.backup_dir.joinpath(*rel.parent.parts)
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.glob(f"{rel.name}.*.bak") if p.is_file())

    def maybe_prune(self) -> None:
        with self._lock:
            now = self._clock()
            if now - self._last_prune < _PRUNE_EVERY_SECONDS:
                return
            self._last_prune = now
        self.prune()

    def prune(self) -> int:
        """Delete backups older than the retention period and empty folders; return the count removed."""
        if not self.backup_dir.is_dir():
            return 0
        cutoff = self._clock() - self.retention_seconds
        removed = 0
        for dirpath, _dirnames, filenames in os.walk(self.backup_dir, topdown=False):
            for name in filenames:
                if not name.endswith(".bak"):
                    continue
                path = Path(dirpath) / name
                try:
                    if path.lstat().st_mtime < cutoff:
                        path.unlink()
                        removed += 1
                except FileNotFoundError:
                    continue  # another pruner got there first
            if Path(dirpath) != self.backup_dir and not os.listdir(dirpath):
                try:
                    os.rmdir(dirpath)
                except OSError as e:
                    log.debug("backup_dir_not_removed", dir=dirpath, error=str(e))
        if removed:
            log.info("backups_pruned", removed=removed, backup_dir=str(self.backup_dir))
        return removed
