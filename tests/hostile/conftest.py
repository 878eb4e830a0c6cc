"""Hostile cases live outside /tmp: the sandbox hides /tmp anyway, which would protect them by accident."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Not under /tmp (bubblewrap mounts an empty tmpfs there, so files under /tmp are hidden from the
# tests whatever the daemon's own rules say); the corpus must show that those rules hold.
CASE_BASE = Path("/var/tmp") if Path("/var/tmp").is_dir() else Path(__file__).resolve().parents[2] / ".hostile-tmp"


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """Overrides pytest's tmp_path for this directory (write_config and build use it)."""
    CASE_BASE.mkdir(exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="ai-agents-hostile-", dir=CASE_BASE))
    yield root
    shutil.rmtree(root, ignore_errors=True)
