"""The clean slate: everything untracked goes (ignored files too) but the allow-list; the caps."""

from __future__ import annotations

from pathlib import Path

import pytest

from ai_agents.agents.models import CodeChange
from ai_agents.config import LiveConfig
from ai_agents.config.models import FileSystemConfig, Settings
from ai_agents.errors import WorkspaceError
from ai_agents.file_system import FileSystemManager
from ai_agents.git import GitManager
from ai_agents.orchestrator.workspace import Workspace, paths_inside


def make(tmp_path: Path, **fs_config: object) -> Workspace:
    root = tmp_path / "ws"
    git = GitManager(root, keep_untracked=["node_modules", "data"])
    git.ensure_repository()
    settings = Settings(file_system=FileSystemConfig(workspace_path=root, backup_dir=tmp_path / "b", **fs_config))
    fs = FileSystemManager.from_config(settings.file_system)
    return Workspace(live=LiveConfig(settings), fs=fs, git=git, runner=None, deployer=None, memory=None)


def test_ignored_files_and_nested_repos_go_the_allow_list_stays(tmp_path: Path) -> None:
    ws = make(tmp_path)
    root = ws.fs.workspace_path
    for rel in ("x.egg-info/conftest.py", "build/many/f.txt", "__pycache__/m.pyc", "stray.py",
                "node_modules/pkg/index.js", "data/ai_agents.db", "nested/.git/HEAD", "sub/node_modules/p.js"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x")
    with ws.on_branch("agents/t1", create=True):
        assert not (root / "x.egg-info").exists() and not (root / "stray.py").exists()  # gone on entry too
        (root / "x.egg-info").mkdir()
        (root / "x.egg-info" / "conftest.py").write_text("planted by a test run")
    assert sorted(p.name for p in root.iterdir()) == [".git", ".gitignore", "README.md", "data", "node_modules"]
    assert (root / "data" / "ai_agents.db").read_text() == "x"
    assert (root / "node_modules" / "pkg" / "index.js").exists()


def test_developer_writes_to_kept_or_ignored_paths_are_refused(tmp_path: Path) -> None:
    ws = make(tmp_path)
    change = CodeChange.model_validate({"approach": "x", "files": [
        {"path": "node_modules/jest/index.js", "content": "x"}, {"path": "build/out.py", "content": "x"},
        {"path": "pkg.egg-info/conftest.py", "content": "x"}, {"path": "ok.py", "content": "X = 1\n"}]})
    with ws.lock:
        written, refused = ws.apply(change, set())
    assert written == ["ok.py"]
    assert [r.split(":")[0] for r in refused] == ["node_modules/jest/index.js", "build/out.py",
                                                  "pkg.egg-info/conftest.py"]
    ws.git.discard_changes()


def test_caps_on_files_and_disk(tmp_path: Path) -> None:
    ws = make(tmp_path, max_workspace_files=50, max_workspace_mb=1)
    root = ws.fs.workspace_path
    (root / "node_modules").mkdir()
    for i in range(200):  # the allow-list does not count
        (root / "node_modules" / f"{i}.js").write_text("x")
    ws.check_limits()
    (root / "build").mkdir()
    for i in range(60):
        (root / "build" / f"{i}.txt").write_text("x")
    with pytest.raises(WorkspaceError, match="more than 50 files"):
        ws.check_limits()
    ws.git.discard_changes()
    (root / "big.bin").write_bytes(b"\1" * (2 * 1024 * 1024))
    with pytest.raises(WorkspaceError, match="more than 1 MB"):
        ws.check_limits()
    assert ws.git.discard_changes() == ["big.bin"]
    ws.check_limits()


def test_paths_inside() -> None:
    root = Path("/srv/app")
    assert paths_inside(root, [Path("/srv/app/data"), Path("/srv/app"), Path("/srv"), None,
                               Path("/srv/app/.venv")]) == ["data", ".venv"]
