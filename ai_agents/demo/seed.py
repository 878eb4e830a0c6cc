"""The demo workspace's starting code: a small text module with a naive slugify and its tests.

Written before the daemon initialises the repository, so the first commit holds it; the demo's
task then changes this existing module through search and search/replace edits.
"""

from __future__ import annotations

from pathlib import Path

SEED_FILES = {
    "textutils.py": '''"""Small text helpers."""


def normalize_spaces(text: str) -> str:
    """Collapse runs of whitespace into single spaces."""
    return " ".join(text.split())


def slugify(text: str) -> str:
    """Turn a title into a URL slug (first version: spaces only)."""
    return normalize_spaces(text).lower().replace(" ", "-")
''',
    "tests/__init__.py": "",
    "tests/test_textutils_base.py": '''from textutils import normalize_spaces


def test_normalize_spaces():
    assert normalize_spaces("  a   b ") == "a b"


def test_normalize_spaces_keeps_words():
    assert normalize_spaces("one two") == "one two"
''',
}


def seed_workspace(workspace: Path) -> None:
    """Write the starting code into an empty (or missing) workspace."""
    for path, content in SEED_FILES.items():
        target = workspace / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
