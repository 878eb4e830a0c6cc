"""Fixtures for the workspace tests: real directories, real git repositories, real subprocesses."""

from __future__ import annotations

import subprocess
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


def _git_cli(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def git_cli():
    """Plain git, as a human would run it, to check what GitManager left behind."""
    return _git_cli


@pytest.fixture
def repo(tmp_path: Path):
    from ai_agents.git import GitManager

    gm = GitManager(tmp_path / "repo", retry_base_delay=0.01, secret_values=["configured-secret-value-123"])
    gm.ensure_repository(None)
    return gm


@pytest.fixture
def bare(tmp_path: Path) -> Path:
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    return remote
