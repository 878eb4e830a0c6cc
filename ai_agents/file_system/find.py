"""Glob over the workspace without descending into tool directories or following symlinks out."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

from ai_agents.errors import WorkspaceError

# Directories that are never the agents' source code.
SKIP_DIRS = frozenset({
    ".git", ".venv", "venv", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache",
    "node_modules", "build", "dist", ".tox", ".nox",
})
# Our own atomic-write temp files (see atomic.py); never part of the result.
TEMP_MARKER = ".aiagents-tmp-"


def _skip_dir(parent: str, name: str) -> bool:
    if name.lower() in SKIP_DIRS or name.endswith(".egg-info"):
        return True
    # Any virtual environment, whatever it is called ("env", ".env311"...).
    return os.path.isfile(os.path.join(parent, name, "pyvenv.cfg"))


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Translate a glob (``*``, ``?``, ``[..]``, ``**``) on '/'-separated paths into a regex."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:[^/]*/)*")  # zero or more whole directories
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            j = pattern.find("]", i + 2 if pattern[i + 1:i + 2] in ("!", "]") else i + 1)
            if j == -1:
                out.append(re.escape(c))
                i += 1
                continue
            body = pattern[i + 1:j].replace("\\", "\\\\")
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append(f"(?!/)[{body}]")
            i = j + 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out) + r"\Z")


def validate_pattern(pattern: str) -> str:
    if not isinstance(pattern, str) or not pattern.strip():
        raise WorkspaceError("glob pattern is empty")
    text = pattern.strip()
    if "\x00" in text:
        raise WorkspaceError("glob pattern contains a NUL byte")
    if text.startswith(("/", "~")) or "\\" in text:
        raise WorkspaceError(f"glob pattern {text!r} must be relative to the workspace, with / separators")
    if ".." in text.split("/"):
        raise WorkspaceError(f"glob pattern {text!r} uses '..'")
    return text.removeprefix("./")


def walk_files(root: Path, inside: Callable[[Path], bool]) -> Iterator[PurePosixPath]:
    """Every file below ``root`` (relative), pruning tool dirs; symlinks kept only if ``inside`` their target."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        # Symlinked directories are listed in dirnames but os.walk does not descend (followlinks=False).
        dirnames[:] = sorted(d for d in dirnames if not _skip_dir(dirpath, d)
                             and not os.path.islink(os.path.join(dirpath, d)))
        base = PurePosixPath(Path(dirpath).relative_to(root).as_posix())
        for name in sorted(filenames):
            if TEMP_MARKER in name:
                continue
            full = os.path.join(dirpath, name)
            if os.path.islink(full) and not inside(Path(os.path.realpath(full))):
                continue
            yield base / name if base.parts else PurePosixPath(name)
