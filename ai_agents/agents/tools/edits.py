"""Search/replace edits: the old text must match exactly once; else a clear reason.

Exact match first. When the exact text is absent, a whitespace-tolerant match (each line
compared without its leading and trailing blanks) is used only when it finds exactly one
place; the replacement is then re-indented by the difference between the two indents.
Every failure raises :class:`EditError` whose message names what did not match and where
the closest text is, so the model can correct its next call.
"""

from __future__ import annotations

import difflib

from ai_agents.errors import AgentsError


class EditError(AgentsError):
    """An edit that cannot be applied; the message is meant for the model."""


def _lines_at(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _reindent(new_lines: list[str], old_indent: str, file_indent: str) -> list[str]:
    if old_indent == file_indent:
        return new_lines
    out = []
    for line in new_lines:
        if not line.strip():
            out.append(line)
        elif line.startswith(old_indent):
            out.append(file_indent + line[len(old_indent):])
        else:
            out.append(line)
    return out


def _closest(file_lines: list[str], old_lines: list[str]) -> str:
    """Where the text most like ``old`` is, and its first differing line, for the error message."""
    if not file_lines or not old_lines:
        return ""
    size = len(old_lines)
    target = "\n".join(line.strip() for line in old_lines)
    best, best_at = 0.0, 0
    # A quick screen on the first line keeps this linear in the file size.
    first = old_lines[0].strip()
    candidates = [i for i, line in enumerate(file_lines)
                  if difflib.SequenceMatcher(None, line.strip(), first).quick_ratio() > 0.6] or range(len(file_lines))
    for i in list(candidates)[:400]:
        window = "\n".join(line.strip() for line in file_lines[i:i + size])
        ratio = difflib.SequenceMatcher(None, window, target).ratio()
        if ratio > best:
            best, best_at = ratio, i
    if best < 0.5:
        return " No similar text was found: read the file again before editing."
    for k, want in enumerate(old_lines):
        have = file_lines[best_at + k] if best_at + k < len(file_lines) else "<end of file>"
        if have.strip() != want.strip():
            return (f" The closest text starts at line {best_at + 1}; its line {best_at + k + 1} is {have!r}"
                    f" where your old text has {want!r}.")
    return f" The closest text starts at line {best_at + 1}."


def apply_edit(path: str, content: str, old: str, new: str) -> tuple[str, str]:
    """``content`` with ``old`` replaced by ``new``, and a note on how it matched. Raises EditError."""
    if old == "":
        raise EditError(f"old text is empty; to add to {path}, replace a nearby unique line, "
                        "or create_file for a new file")
    if old == new:
        raise EditError("old and new text are the same: nothing would change")
    count = content.count(old)
    if count == 1:
        at = content.index(old)
        return content.replace(old, new, 1), f"replaced at line {_lines_at(content, at)}"
    if count > 1:
        lines, start = [], 0
        for _ in range(min(count, 5)):
            at = content.index(old, start)
            lines.append(str(_lines_at(content, at)))
            start = at + 1
        raise EditError(f"old text matches {count} places in {path} (lines {', '.join(lines)}"
                        f"{', ...' if count > 5 else ''}); include more surrounding lines so it matches exactly once")
    file_lines = content.split("\n")
    old_lines = old.strip("\n").split("\n")
    stripped = [line.strip() for line in old_lines]
    size = len(old_lines)
    hits = [i for i in range(len(file_lines) - size + 1)
            if [line.strip() for line in file_lines[i:i + size]] == stripped]
    if len(hits) == 1:
        i = hits[0]
        new_lines = new.strip("\n").split("\n") if new.strip("\n") else []
        first = next((k for k, s in enumerate(stripped) if s), 0)
        old_indent, file_indent = _indent(old_lines[first]), _indent(file_lines[i + first])
        if not all(_indent(o).startswith(old_indent) and
                   _indent(f) == file_indent + _indent(o)[len(old_indent):]
                   for o, f in zip(old_lines, file_lines[i:i + size], strict=True) if o.strip()):
            raise EditError(f"old text matches line {i + 1} of {path} only when whitespace is ignored, and its "
                            "indentation differs unevenly; copy the lines exactly as read_file shows them")
        new_lines = _reindent(new_lines, old_indent, file_indent)
        result = file_lines[:i] + new_lines + file_lines[i + size:]
        return "\n".join(result), f"replaced at line {i + 1} (matched ignoring indentation and trailing spaces)"
    if len(hits) > 1:
        where = ", ".join(str(i + 1) for i in hits[:5])
        raise EditError(f"old text matches no place exactly, and {len(hits)} places in {path} when whitespace is "
                        f"ignored (lines {where}); include more surrounding lines so it matches exactly once")
    raise EditError(f"old text not found in {path}." + _closest(file_lines, old_lines))
