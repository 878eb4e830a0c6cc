"""Commit messages: the model's free text made inert, the daemon's trailer block appended last.

A commit message is the model's text (subject and body) followed by one block of ``Key: value``
trailers the daemon writes (Task-Id, Agent, Tests...). What the pipeline later reads back (which
agent committed what for which task) comes only from that last block and the author identity the
daemon set, never from anything above it. So the free text is neutralised before it is committed:
control characters (ESC, CR, bidi overrides...) are removed, and a line that looks like a trailer
(``Agent: Developer``) gets its colon replaced, so no parser, naive or git's own, can read it as one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

from ai_agents.file_system.paths import is_control

# Keys the daemon writes; a subject line starting with one of them is neutralised as well.
DAEMON_KEYS = frozenset({"task-id", "agent", "tests", "test-file", "module", "stage"})
_TRAILER_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
# "Key: value", "Key:", " Key : value": what git or a naive reader could take for a trailer.
_TRAILER_LIKE = re.compile(r"^([ \t]*)([A-Za-z0-9][A-Za-z0-9_-]*)([ \t]*):(?=[ \t]|$)")
_TRAILER_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_-]*): (.*)$")

def strip_controls(text: str, *, keep_newlines: bool = True) -> str:
    """``text`` without control characters; CRLF and lone CR become newlines, tabs spaces."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    if not keep_newlines:
        text = text.replace("\n", " ")
    return "".join(ch for ch in text if ch == "\n" or not is_control(ch))


def neutralise_line(line: str) -> str:
    """``Agent: Developer`` -> ``Agent - Developer``; any other line unchanged."""
    return _TRAILER_LIKE.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)} -", line, count=1)


def clean_free_text(message: str) -> tuple[str, int, int]:
    """(the message made inert, control characters removed, lines neutralised); see the module docstring."""
    removed = sum(1 for ch in message if ch not in "\n\t" and is_control(ch))
    lines = strip_controls(message).strip("\n").split("\n")
    subject = " ".join(lines[0].split())
    key = _TRAILER_LIKE.match(subject)
    first = neutralise_line(subject) if key and key.group(2).lower() in DAEMON_KEYS else subject
    body = [line.rstrip() for line in lines[1:]]
    inert = [neutralise_line(line) for line in body]
    neutralised = (first != subject) + sum(a != b for a, b in zip(body, inert, strict=True))
    # Runs of blank lines collapse to one: the body keeps its paragraphs, nothing else.
    text = re.sub(r"\n{3,}", "\n\n", "\n".join([first, *inert])).strip()
    return text, removed, neutralised


def trailer_block(trailers: Mapping[str, str]) -> str:
    """The daemon's own block. Keys and values are checked: a value cannot start another trailer."""
    lines = []
    for key, value in trailers.items():
        if not _TRAILER_KEY.fullmatch(key):
            raise ValueError(f"trailer key {key!r} is not a plain token")
        text = " ".join(strip_controls(str(value), keep_newlines=False).split())
        if not text:
            raise ValueError(f"trailer {key} has no value")
        lines.append(f"{key}: {text}")
    return "\n".join(lines)


def compose(message: str, trailers: Mapping[str, str] | None) -> tuple[str, int, int]:
    """(the full message, control characters removed, lines neutralised): free text, then the trailer block."""
    text, removed, neutralised = clean_free_text(message)
    if trailers:
        text = f"{text}\n\n{trailer_block(trailers)}"
    return text + "\n", removed, neutralised


def parse_trailers(message: str) -> dict[str, str]:
    """The trailers of the last paragraph, when every line of it is one; else nothing.

    Only the daemon writes that paragraph (see :func:`compose`); earlier lines are never read.
    """
    paragraphs = [p for p in message.strip().split("\n\n") if p.strip()]
    if len(paragraphs) < 2:  # a subject alone is never a trailer block
        return {}
    found: dict[str, str] = {}
    for line in paragraphs[-1].strip().split("\n"):
        m = _TRAILER_LINE.match(line)
        if not m or m.group(1) in found:
            return {}
        found[m.group(1)] = m.group(2).strip()
    return found


class CommitRecord(BaseModel):
    """One commit as the daemon recorded it: who it says made it (author identity) and its trailers."""

    model_config = ConfigDict(frozen=True)

    sha: str
    author_email: str
    agent: str | None  # the Role value whose identity authored it; None for system or foreign commits
    trailers: dict[str, str]
