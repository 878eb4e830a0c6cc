"""Turn a caller's path into a real path inside the workspace, or refuse with the reason.

Every path an agent gives us is untrusted text from a model. The rules, in order:
lexical checks first (type, NUL and other control characters, empty, ``~``, absolute, ``..``
escapes, ``.git``),
then the symlink check on the real path (any component), then protected globs on
both the path as given and the path it really names.
"""

from __future__ import annotations

import fnmatch
import os
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ai_agents.errors import WorkspaceError

_DRIVE = re.compile(r"^[A-Za-z]:")
# Unicode format characters that reorder or hide text (Trojan Source), on top of category Cc.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def is_control(ch: str) -> bool:
    """A control character (C0 such as ESC and CR, DEL, C1) or a bidi override/isolate."""
    return unicodedata.category(ch) == "Cc" or ch in _BIDI


@dataclass(frozen=True)
class ResolvedPath:
    """A path that passed every check: its workspace-relative form and its absolute real path."""

    rel: PurePosixPath
    abs: Path


def _is_git_dir(parts: Iterable[str]) -> bool:
    # Case-insensitive: on macOS/Windows file systems ".GIT" *is* ".git".
    return any(p.lower() == ".git" for p in parts)


def normalize(path: object) -> PurePosixPath:
    """Lexically validate ``path`` and return it as a clean relative POSIX path."""
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str):
        raise WorkspaceError(f"path must be text, not {type(path).__name__}")
    if "\x00" in path:
        raise WorkspaceError(f"path {path!r} contains a NUL byte")
    text = path.strip()
    if bad := sorted({f"U+{ord(c):04X}" for c in text if is_control(c)}):
        # An ESC or CR in a file name rewrites terminals and logs that show it, and git's output.
        raise WorkspaceError(f"path {text!r} contains control characters ({', '.join(bad)}); they are refused")
    if not text:
        raise WorkspaceError("path is empty")
    if text.startswith("~"):
        raise WorkspaceError(f"path {text!r} is home-relative (~); give a path relative to the workspace")
    if "\\" in text:
        raise WorkspaceError(f"path {text!r} contains a backslash; use / as the separator")
    if text.startswith("/") or _DRIVE.match(text):
        raise WorkspaceError(f"path {text!r} is absolute; give a path relative to the workspace")
    parts: list[str] = []
    for part in text.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise WorkspaceError(f"path {text!r} uses '..' to leave the workspace")
            parts.pop()
        else:
            parts.append(part)
    if not parts:
        raise WorkspaceError(f"path {text!r} names the workspace itself, not a file")
    if _is_git_dir(parts):
        raise WorkspaceError(f"path {text!r} is inside .git/, which agents may not touch")
    return PurePosixPath(*parts)


def matches_any(rel: PurePosixPath, patterns: Iterable[str]) -> str | None:
    """The first glob in ``patterns`` that ``rel`` matches, or None.

    A pattern with a ``/`` matches the whole relative path; one without matches the
    file name at any depth too (as in .gitignore), so ``.env`` protects ``sub/.env``.
    Matching is also tried in lower case so ``CONFIG.yaml`` cannot dodge ``config.yaml``.
    """
    text = rel.as_posix()
    for pattern in patterns:
        pat = pattern.strip().strip("/")
        if not pat:
            continue
        candidates = [text] if "/" in pat else [text, rel.name]
        for cand in candidates:
            if fnmatch.fnmatchcase(cand, pat) or fnmatch.fnmatchcase(cand.lower(), pat.lower()):
                return pattern
            # A plain directory name ("tests", "docs/api") protects everything below it too.
            if not any(c in pat for c in "*?[") and cand.startswith(pat + "/"):
                return pattern
    return None


class PathPolicy:
    """The workspace root and its protected globs; resolves and checks paths."""

    def __init__(self, root: Path, protected: Iterable[str] = ()):
        self.root = Path(os.path.realpath(root))
        self.protected: tuple[str, ...] = tuple(protected)

    def resolve(self, path: object, *, read_only: Iterable[str] = (), for_write: bool = False) -> ResolvedPath:
        """Validate ``path``; ``read_only`` globs refuse writes but allow reads."""
        rel = normalize(path)
        real = Path(os.path.realpath(self.root.joinpath(*rel.parts)))
        try:
            real_rel = PurePosixPath(real.relative_to(self.root).as_posix())
        except ValueError:
            raise WorkspaceError(f"path {rel} goes through a symlink that leads outside the workspace") from None
        if not real_rel.parts:
            raise WorkspaceError(f"path {rel} names the workspace itself, not a file")
        if _is_git_dir(real_rel.parts):
            raise WorkspaceError(f"path {rel} goes through a symlink into .git/, which agents may not touch")
        for candidate in {rel, real_rel}:
            hit = matches_any(candidate, self.protected)
            if hit is not None:
                raise WorkspaceError(f"path {rel} is protected by the configuration (pattern {hit!r})")
            if for_write:
                hit = matches_any(candidate, read_only)
                if hit is not None:
                    raise WorkspaceError(f"path {rel} is read-only for this agent (pattern {hit!r})")
        return ResolvedPath(rel=rel, abs=real)

    def contains(self, real: Path) -> bool:
        """True when the real path ``real`` lies inside the workspace and outside .git/."""
        try:
            rel = Path(real).relative_to(self.root)
        except ValueError:
            return False
        return bool(rel.parts) and not _is_git_dir(rel.parts)
