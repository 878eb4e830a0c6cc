"""Fixtures for the workspace tests: real directories, real git repositories, real subprocesses."""

from __future__ import annotations

from pathlib import Path

import pytest

from ai_agents.file_system import FileSystemManager


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    return root


@pytest.fixture
def fs(workspace: Path, tmp_path: Path) -> FileSystemManager:
    return FileSystemManager(
        workspace,
        backup_dir=tmp_path / "backups",
        max_file_bytes=10_000,
        protected_paths=[".github/workflows/*", ".env", "config.yaml"],
        backup_retention_days=1,
    )
