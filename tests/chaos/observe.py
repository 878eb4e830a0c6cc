"""Watching a running daemon from outside: its JSON log, its child processes, its SQLite locks.

Everything here reads /proc or files and never blocks the daemon, so a kill can be
aimed at a moment (a pytest child running, a git merge running, the database's WAL
write lock held) and what the daemon was doing at that instant can be recorded.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# SQLite in WAL mode takes the writer lock as a POSIX lock on byte 120 of the -shm file
# (WALINDEX_LOCK_OFFSET + WAL_WRITE_LOCK): held exactly while a write transaction is open.
WAL_WRITE_LOCK_BYTE = 120


@dataclass
class LogTail:
    """Incremental reader of a JSON-lines log that another process is writing."""

    path: Path
    events: list[dict[str, Any]] = field(default_factory=list)
    other_lines: list[str] = field(default_factory=list)  # stderr noise: tracebacks and the like
    _offset: int = 0
    _partial: str = ""

    def poll(self) -> list[dict[str, Any]]:
        """Read what was appended since the last poll; return the new events."""
        try:
            with open(self.path, encoding="utf-8", errors="replace") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
                self._offset = fh.tell()
        except FileNotFoundError:
            return []
        text = self._partial + chunk
        lines = text.split("\n")
        self._partial = lines.pop()  # an unfinished last line waits for the next poll
        new = []
        for line in filter(None, (ln.strip() for ln in lines)):
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                self.other_lines.append(line)
                continue
            if isinstance(event, dict):
                new.append(event)
        self.events.extend(new)
        return new

    def named(self, name: str) -> list[dict[str, Any]]:
        self.poll()
        return [e for e in self.events if e.get("event") == name]


def children(pid: int) -> list[int]:
    """Direct children of every thread of ``pid``."""
    found: list[int] = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in threads:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                found += [int(c) for c in fh.read().split()]
        except OSError:
            continue  # the thread ended meanwhile
    return found


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return [a.decode(errors="replace") for a in fh.read().split(b"\0") if a]
    except OSError:
        return []


def descendants(pid: int) -> list[tuple[int, list[str]]]:
    """(pid, argv) of every live descendant of ``pid``."""
    out: list[tuple[int, list[str]]] = []
    todo = children(pid)
    while todo:
        child = todo.pop()
        argv = cmdline(child)
        if argv:
            out.append((child, argv))
        todo += children(child)
    return out


def git_subcommand(argv: list[str]) -> str | None:
    """The git subcommand of a git process's argv (``-c k=v`` and ``-C dir`` skipped), else None."""
    if not argv or Path(argv[0]).name != "git":
        return None
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg in ("-c", "-C"):
            i += 2
            continue
        if arg.startswith("-"):
            i += 1
            continue
        return arg
    return None


def is_pytest(argv: list[str]) -> bool:
    """A test run: ``python -m pytest ...`` or the sandbox's ``python -c "...import pytest..."``."""
    return git_subcommand(argv) is None and any("pytest" in arg for arg in argv)


def proc_children_supported() -> bool:
    return Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists()


def holds_wal_write_lock(pid: int, shm: Path) -> bool:
    """True while ``pid`` has a write transaction open on the database whose -shm file is ``shm``."""
    try:
        ino = os.stat(shm).st_ino
        with open("/proc/locks") as fh:
            locks = fh.read()
    except OSError:
        return False
    for line in locks.splitlines():
        parts = line.split()
        # "N: POSIX  ADVISORY  WRITE <pid> <maj:min:ino> <start> <end>"
        if (len(parts) >= 8 and parts[1] == "POSIX" and parts[3] == "WRITE" and parts[4] == str(pid)
                and parts[5].rsplit(":", 1)[-1] == str(ino) and parts[6] == str(WAL_WRITE_LOCK_BYTE)):
            return True
    return False
