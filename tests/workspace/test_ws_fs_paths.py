"""Path confinement: every kind of escape is refused with a reason, and refusals are logged."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import structlog

from ai_agents.errors import WorkspaceError
from ai_agents.file_system import FileSystemManager


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    out = tmp_path / "outside"
    out.mkdir()
    (out / "secret.txt").write_text("outside secret")
    return out


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/etc/passwd", "absolute"),
        ("../escape.txt", "'..'"),
        ("a/../../x", "'..'"),
        ("ok\x00.py", "NUL"),
        (".git/hooks/pre-commit", ".git"),
        (".GIT/config", ".git"),
        ("src/.Git/HEAD", ".git"),
        ("~/notes.txt", "home-relative"),
        ("", "empty"),
        ("   ", "empty"),
        (".", "workspace itself"),
        ("C:/Windows/x", "absolute"),
        ("a\\..\\b", "backslash"),
        ("config.yaml", "protected"),
        ("sub/.env", "protected"),
        (".github/workflows/ci.yml", "protected"),
    ],
)
def test_escapes_refused_with_reason(fs: FileSystemManager, workspace: Path, path: str, reason: str) -> None:
    with pytest.raises(WorkspaceError, match=reason) as info:
        fs.write_file(path, "x = 1\n")
    assert reason in str(info.value)
    with pytest.raises(WorkspaceError):
        fs.read_file(path)
    # Nothing was created anywhere near the workspace.
    assert not any(p.is_file() for p in workspace.rglob("*"))


def test_non_text_path_refused(fs: FileSystemManager) -> None:
    with pytest.raises(WorkspaceError, match="must be text"):
        fs.read_file(42)


def test_symlink_file_to_outside_refused(fs: FileSystemManager, workspace: Path, outside: Path) -> None:
    (workspace / "link.txt").symlink_to(outside / "secret.txt")
    with pytest.raises(WorkspaceError, match="symlink"):
        fs.read_file("link.txt")
    with pytest.raises(WorkspaceError, match="symlink"):
        fs.write_file("link.txt", "overwritten")
    assert (outside / "secret.txt").read_text() == "outside secret"


def test_symlinked_directory_component_refused(fs: FileSystemManager, workspace: Path, outside: Path) -> None:
    (workspace / "sub").mkdir()
    (workspace / "sub" / "dir").symlink_to(outside, target_is_directory=True)
    with pytest.raises(WorkspaceError, match="symlink"):
        fs.write_file("sub/dir/new.txt", "planted")
    with pytest.raises(WorkspaceError, match="symlink"):
        fs.create_file("sub/dir/secret2.txt", "planted")
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


def test_dangling_symlink_to_outside_refused(fs: FileSystemManager, workspace: Path, outside: Path) -> None:
    (workspace / "dangling").symlink_to(outside / "not-yet.txt")
    with pytest.raises(WorkspaceError, match="symlink"):
        fs.write_file("dangling", "created through a link")
    assert not (outside / "not-yet.txt").exists()


def test_symlink_into_git_dir_refused(fs: FileSystemManager, workspace: Path) -> None:
    (workspace / ".git" / "hooks").mkdir(parents=True)
    (workspace / "hooks").symlink_to(workspace / ".git" / "hooks", target_is_directory=True)
    with pytest.raises(WorkspaceError, match=r"\.git"):
        fs.write_file("hooks/pre-commit", "#!/bin/sh\n")
    assert not (workspace / ".git" / "hooks" / "pre-commit").exists()


def test_symlink_inside_workspace_allowed(fs: FileSystemManager, workspace: Path) -> None:
    (workspace / "real.txt").write_text("inside")
    (workspace / "alias.txt").symlink_to(workspace / "real.txt")
    assert fs.read_file("alias.txt") == "inside"
    assert fs.resolve("alias.txt") == (workspace / "real.txt").resolve()


def test_symlink_to_protected_file_refused(fs: FileSystemManager, workspace: Path) -> None:
    (workspace / "config.yaml").write_text("llm: {}")
    (workspace / "innocent.txt").symlink_to(workspace / "config.yaml")
    with pytest.raises(WorkspaceError, match="protected"):
        fs.read_file("innocent.txt")


def test_normal_paths_are_normalised(fs: FileSystemManager, workspace: Path) -> None:
    written = fs.write_file("./src//pkg/../mod.py", "X = 1\n")
    assert written == (workspace / "src" / "mod.py").resolve()
    assert fs.read_file("src/mod.py") == "X = 1\n"
    assert fs.exists(Path("src") / "mod.py")


def test_read_only_patterns_refuse_writes_allow_reads_and_are_logged(fs: FileSystemManager) -> None:
    fs.write_file("tests/test_calc.py", "def test_one():\n    assert True\n")
    developer_view = fs.with_read_only(["tests/test_calc.py"])
    with structlog.testing.capture_logs() as logs:
        with pytest.raises(WorkspaceError, match="read-only"):
            developer_view.write_file("tests/test_calc.py", "def test_one():\n    pass\n")
        with pytest.raises(WorkspaceError, match="read-only"):
            developer_view.delete_file("tests/test_calc.py")
    refused = [e for e in logs if e["event"] == "write_refused"]
    assert len(refused) == 2 and "read-only" in refused[0]["reason"]
    assert "assert True" in developer_view.read_file("tests/test_calc.py")
    # The original manager (QA's) is not restricted by the view.
    fs.write_file("tests/test_calc.py", "def test_one():\n    assert 1\n")


def test_protect_and_unprotect_directory(fs: FileSystemManager) -> None:
    with fs.protected(["tests"]), pytest.raises(WorkspaceError, match="read-only"):
        fs.create_file("tests/deep/test_new.py", "")
    fs.create_file("tests/deep/test_new.py", "")
    fs.protect(["*.md"])
    with pytest.raises(WorkspaceError, match="read-only"):
        fs.write_file("docs/README.md", "x")
    fs.unprotect(["*.md"])
    assert fs.write_file("docs/README.md", "x").read_text() == "x"


def test_relative_workspace_rejected(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="absolute"):
        FileSystemManager(Path("relative/ws"), backup_dir=tmp_path / "b")
    assert not Path("relative").exists()


def test_fifo_read_does_not_block(fs: FileSystemManager, workspace: Path) -> None:
    os.mkfifo(workspace / "pipe")
    with pytest.raises(WorkspaceError, match="not a regular file"):
        fs.read_file("pipe")
