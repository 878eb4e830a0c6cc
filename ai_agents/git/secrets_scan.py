"""Find credentials in what is about to be committed, and say where without repeating them."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

from ai_agents.logging_setup import SECRET_PATTERNS

_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@")
# Example files are how projects document which variables exist: allowed.
_ENV_EXAMPLE_SUFFIXES = (".example", ".sample", ".template", ".dist")
_KEY_FILE_NAMES = frozenset({"id_rsa", "id_dsa", "id_ecdsa", "id_ed25519"})
_KEY_FILE_SUFFIXES = (".p12", ".pfx", ".jks", ".keystore")
# Shorter configured values would match ordinary words (same rule as the log Redactor).
MIN_SECRET_VALUE_LEN = 6


@dataclass(frozen=True)
class SecretFinding:
    """Where a secret-looking thing is: never what it is."""

    path: str
    line: int | None
    kind: str

    def describe(self) -> str:
        where = f"{self.path} line {self.line}" if self.line is not None else self.path
        return f"{where} ({self.kind})"


def _credential_hits(text: str) -> bool:
    for pattern in SECRET_PATTERNS:
        for m in pattern.finditer(text):
            # A token starts at a word boundary: "task-implement-..." contains "sk-implement-..."
            # but is a branch name, not an OpenAI key.
            if m.start() > 0 and text[m.start() - 1].isalnum():
                continue
            # "token = os.environ['X']" is code reading a secret, not one: only a quoted
            # literal value counts for the generic key=value shape.
            if pattern.groups >= 2 and not any(q in m.group(2) for q in "'\""):
                continue
            return True
    return False


def line_kind(line: str, secret_values: Iterable[str]) -> str | None:
    """What secret ``line`` holds ("configured secret value", "credential-shaped string") or None."""
    if any(v and len(v) >= MIN_SECRET_VALUE_LEN and v in line for v in secret_values):
        return "configured secret value"
    if _credential_hits(line):
        return "credential-shaped string"
    return None


def path_kind(path: str) -> str | None:
    """Files that must never be committed whatever they contain."""
    name = PurePosixPath(path).name
    lower = name.lower()
    if lower == ".env" or (lower.startswith(".env.") and not lower.endswith(_ENV_EXAMPLE_SUFFIXES)):
        return ".env file"
    if lower in _KEY_FILE_NAMES or lower.endswith(_KEY_FILE_SUFFIXES):
        return "private key file"
    return None


def scan_added_lines(path: str, diff_text: str, secret_values: Iterable[str]) -> list[SecretFinding]:
    """Scan the ``+`` lines of a unified diff of one file, with their new line numbers."""
    values = tuple(secret_values)
    findings: list[SecretFinding] = []
    lineno = 0
    in_hunk = False
    for raw in diff_text.splitlines():
        m = _HUNK.match(raw)
        if m:
            lineno, in_hunk = int(m.group(1)), True
            continue
        if not in_hunk:
            continue  # file headers ("+++ b/x") come before the first hunk
        if raw.startswith("+"):
            kind = line_kind(raw[1:], values)
            if kind:
                findings.append(SecretFinding(path, lineno, kind))
            lineno += 1
        elif raw.startswith(" "):
            lineno += 1
    return findings


def scan_message(message: str, secret_values: Iterable[str]) -> list[SecretFinding]:
    values = tuple(secret_values)
    return [SecretFinding("commit message", n, kind)
            for n, line in enumerate(message.splitlines(), 1) if (kind := line_kind(line, values))]
