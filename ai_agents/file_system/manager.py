"""FileSystemManager: every file operation the agents make, confined to the workspace."""

from __future__ import annotations

import contextlib
import copy
import os
import stat
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import structlog

from ai_agents.config.models import FileSystemConfig
from ai_agents.errors import WorkspaceError
from ai_agents.file_system.atomic import atomic_create_bytes, atomic_write_bytes
from ai_agents.file_system.backups import BackupStore
from ai_agents.file_system.code_parse import ModuleStructure, check_python_syntax, parse_source
from ai_agents.file_system.find import TEMP_MARKER, glob_to_regex, validate_pattern, walk_files
from ai_agents.file_system.paths import PathPolicy, ResolvedPath

log = structlog.get_logger("ai_agents.file_system")

# A leftover temp file younger than this may belong to a write in progress.
_STALE_TEMP_SECONDS = 60.0


class FileSystemManager:
    """Read, write, find and outline files inside one workspace directory.

    Paths are relative to the workspace; anything else is refused with a
    :class:`WorkspaceError` that says why. Writes are atomic and back up the
    previous version first. ``read_only`` globs (see :meth:`protect` and
    :meth:`with_read_only`) refuse writes and deletes but still allow reads;
    configured ``protected_paths`` refuse everything.
    """

    def __init__(
        self,
        workspace_path: Path | str,
        *,
        backup_dir: Path | str,
        max_file_bytes: int = 1_000_000,
        protected_paths: Iterable[str] = (),
        backup_retention_days: float = 7.0,
        read_only: Iterable[str] = (),
    ):
        root = Path(workspace_path)
        if not root.is_absolute():
            raise WorkspaceError(f"workspace path {root} must be absolute")
        root.mkdir(parents=True, exist_ok=True)
        self._policy = PathPolicy(root, protected_paths)
        self._backups = BackupStore(Path(backup_dir), backup_retention_days)
        self.max_file_bytes = max_file_bytes
        self._read_only: list[str] = list(read_only)
        self._lock = threading.Lock()
        if self._policy.contains(Path(os.path.realpath(backup_dir))):
            log.warning("backup_dir_inside_workspace", backup_dir=str(backup_dir),
                        hint="backups would be listed and committed; put them outside the workspace")

    @classmethod
    def from_config(cls, cfg: FileSystemConfig) -> FileSystemManager:
        return cls(
            cfg.workspace_path,
            backup_dir=cfg.backup_dir,
            max_file_bytes=cfg.max_file_bytes,
            protected_paths=cfg.protected_paths,
            backup_retention_days=cfg.backup_retention_days,
        )

    # --- protection ---------------------------------------------------------------
    @property
    def workspace_path(self) -> Path:
        return self._policy.root

    @property
    def read_only_patterns(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._read_only)

    def protect(self, patterns: Iterable[str]) -> None:
        """Make ``patterns`` (globs) read-only on this instance until :meth:`unprotect`."""
        with self._lock:
            self._read_only.extend(p for p in patterns if p not in self._read_only)

    def unprotect(self, patterns: Iterable[str]) -> None:
        drop = set(patterns)
        with self._lock:
            self._read_only = [p for p in self._read_only if p not in drop]

    @contextlib.contextmanager
    def protected(self, patterns: Iterable[str]) -> Iterator[FileSystemManager]:
        """``with fs.protected(["tests/test_x.py"]):`` — read-only for the duration of the block."""
        patterns = list(patterns)
        self.protect(patterns)
        try:
            yield self
        finally:
            self.unprotect(patterns)

    def with_read_only(self, patterns: Iterable[str]) -> FileSystemManager:
        """A view of the same workspace with extra read-only globs; this instance is unchanged.

        Prefer this to :meth:`protect` when several agents share one manager: the
        Developer gets the view, QA keeps writing its tests through the original.
        """
        view = copy.copy(self)
        view._lock = threading.Lock()
        view._read_only = [*self.read_only_patterns, *(p for p in patterns if p not in self._read_only)]
        return view

    def _resolve(self, path: object, *, write: bool) -> ResolvedPath:
        try:
            return self._policy.resolve(path, read_only=self.read_only_patterns, for_write=write)
        except WorkspaceError as e:
            if write:
                log.warning("write_refused", path=path if isinstance(path, str) else repr(path), reason=str(e))
            raise

    # --- queries ------------------------------------------------------------------
    def resolve(self, path: object) -> Path:
        """The absolute real path ``path`` names, after every check (readable, maybe not writable)."""
        return self._resolve(path, write=False).abs

    def check_writable(self, path: object) -> str:
        """The normal relative path ``path`` names if a write there would be allowed; else WorkspaceError."""
        return self._resolve(path, write=True).rel.as_posix()

    def exists(self, path: object) -> bool:
        return self._resolve(path, write=False).abs.exists()

    def read_file(self, path: object) -> str:
        """The UTF-8 text of a regular file in the workspace."""
        target = self._resolve(path, write=False)
        try:
            st = target.abs.stat()
        except FileNotFoundError:
            raise WorkspaceError(f"{target.rel} does not exist") from None
        if not stat.S_ISREG(st.st_mode):
            # A FIFO would block the reader forever; a directory is not text.
            raise WorkspaceError(f"{target.rel} is not a regular file")
        if st.st_size > self.max_file_bytes:
            raise WorkspaceError(f"{target.rel} is {st.st_size} bytes, over the {self.max_file_bytes}-byte limit")
        try:
            return target.abs.read_bytes().decode("utf-8")
        except UnicodeDecodeError as e:
            raise WorkspaceError(f"{target.rel} is not UTF-8 text (byte {e.start})") from e

    def find_files(self, pattern: str) -> list[Path]:
        """Workspace-relative paths matching the glob ``pattern`` (``**`` crosses directories)."""
        regex = glob_to_regex(validate_pattern(pattern))
        root = self._policy.root
        return [Path(rel) for rel in walk_files(root, self._policy.contains) if regex.match(rel.as_posix())]

    def parse_code(self, path: object) -> ModuleStructure:
        """Outline a ``.py`` file: classes with methods, functions with signatures, imports, docstrings."""
        target = self._resolve(path, write=False)
        if target.rel.suffix != ".py":
            raise WorkspaceError(f"{target.rel} is not a Python file")
        return parse_source(self.read_file(target.rel), target.rel.as_posix())

    # --- changes ------------------------------------------------------------------
    def _prepare(self, path: object, content: object) -> tuple[ResolvedPath, bytes]:
        target = self._resolve(path, write=True)
        try:
            if not isinstance(content, str):
                raise WorkspaceError(f"content for {target.rel} must be text, not {type(content).__name__}")
            data = content.encode("utf-8")
            if len(data) > self.max_file_bytes:
                raise WorkspaceError(
                    f"{target.rel}: {len(data)} bytes is over the {self.max_file_bytes}-byte limit per file")
            if target.rel.suffix == ".py":
                check_python_syntax(content, target.rel.as_posix())
            if target.abs.is_symlink() or (target.abs.exists() and not target.abs.is_file()):
                raise WorkspaceError(f"{target.rel} exists and is not a regular file")
        except (WorkspaceError, UnicodeEncodeError) as e:
            log.warning("write_refused", path=str(target.rel), reason=str(e))
            if isinstance(e, UnicodeEncodeError):
                raise WorkspaceError(f"{target.rel}: content is not encodable as UTF-8: {e.reason}") from e
            raise
        try:
            target.abs.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise WorkspaceError(f"cannot create the folder for {target.rel}: {e.strerror or e}") from e
        return target, data

    def _replace(self, src: Path, dst: Path) -> None:
        """The rename step of an atomic write (a seam for crash tests)."""
        os.replace(src, dst)

    def write_file(self, path: object, content: str) -> Path:
        """Create or replace a text file atomically, backing up the old version first."""
        target, data = self._prepare(path, content)
        existed = target.abs.is_file()
        try:
            if existed:
                self._backups.backup(target.abs, target.rel)
            atomic_write_bytes(target.abs, data, replace=self._replace)
        except OSError as e:
            raise WorkspaceError(f"could not write {target.rel}: {e.strerror or e}") from e
        log.info("file_written", path=str(target.rel), bytes=len(data), replaced=existed)
        return target.abs

    def create_file(self, path: object, content: str) -> Path:
        """Create a new text file; refuse if anything already exists at ``path``."""
        target, data = self._prepare(path, content)
        try:
            atomic_create_bytes(target.abs, data)
        except FileExistsError:
            log.warning("write_refused", path=str(target.rel), reason="already exists")
            raise WorkspaceError(f"{target.rel} already exists; use write_file to replace it") from None
        except OSError as e:
            raise WorkspaceError(f"could not create {target.rel}: {e.strerror or e}") from e
        log.info("file_created", path=str(target.rel), bytes=len(data))
        return target.abs

    def delete_file(self, path: object) -> bool:
        """Delete a file (after backing it up). False if there was nothing to delete."""
        target = self._resolve(path, write=True)
        link = self._policy.root.joinpath(*target.rel.parts)
        if link.is_symlink():
            # Deleting a link removes the link, never the file it points to.
            link.unlink()
            log.info("file_deleted", path=str(target.rel), symlink=True)
            return True
        if not target.abs.exists():
            return False
        if target.abs.is_dir():
            log.warning("write_refused", path=str(target.rel), reason="is a directory")
            raise WorkspaceError(f"{target.rel} is a directory; only files can be deleted")
        try:
            if target.abs.is_file():
                self._backups.backup(target.abs, target.rel)
            target.abs.unlink()
        except FileNotFoundError:
            return False
        except OSError as e:
            raise WorkspaceError(f"could not delete {target.rel}: {e.strerror or e}") from e
        log.info("file_deleted", path=str(target.rel))
        return True

    # --- maintenance --------------------------------------------------------------
    def backups_of(self, path: object) -> list[Path]:
        """Backups of ``path``, oldest first."""
        return self._backups.backups_of(self._resolve(path, write=False).rel)

    def prune_backups(self) -> int:
        """Delete backups older than the retention period; return how many."""
        return self._backups.prune()

    def recover(self, older_than: float = _STALE_TEMP_SECONDS) -> int:
        """Remove temp files a crash left mid-write (older than ``older_than`` seconds); return how many.

        Called at daemon start. A younger temp file may belong to a write in progress.
        """
        removed = 0
        cutoff = time.time() - older_than
        for dirpath, dirnames, filenames in os.walk(self._policy.root):
            dirnames[:] = [d for d in dirnames if d.lower() != ".git"]
            for name in filenames:
                path = Path(dirpath) / name
                if TEMP_MARKER not in name:
                    continue
                try:
                    if path.lstat().st_mtime > cutoff:
                        continue
                    path.unlink()
                except FileNotFoundError:
                    continue  # the writer finished (renamed or cleaned) meanwhile
                removed += 1
                log.info("stale_temp_removed", path=str(path.relative_to(self._policy.root)))
        return removed
