"""Writes: atomic, backed up, size-capped, syntax-checked; finding and outlining files."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ai_agents.errors import WorkspaceError
from ai_agents.file_system import FileSystemManager, check_workspace


def test_syntax_error_refused_with_line_number(fs: FileSystemManager, workspace: Path) -> None:
    fs.write_file("calc.py", "def add(a, b):\n    return a + b\n")
    bad = "def add(a, b):\n    return a + b\n\ndef sub(a, b)\n    return a - b\n"
    with pytest.raises(WorkspaceError, match=r"calc.py: syntax error at line 4") as info:
        fs.write_file("calc.py", bad)
    assert "expected ':'" in str(info.value)
    assert (workspace / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"
    with pytest.raises(WorkspaceError, match="line 1"):
        fs.create_file("other.py", "return 5\n")  # compiles only inside a function
    assert not (workspace / "other.py").exists()


def test_non_python_files_are_not_syntax_checked(fs: FileSystemManager) -> None:
    assert fs.write_file("notes.txt", "def broken(:\n").read_text() == "def broken(:\n"


def test_size_cap(fs: FileSystemManager, workspace: Path) -> None:
    with pytest.raises(WorkspaceError, match="over the 10000-byte limit"):
        fs.write_file("big.txt", "é" * 5001)  # 10002 bytes in UTF-8
    (workspace / "huge.txt").write_bytes(b"x" * 10_001)
    with pytest.raises(WorkspaceError, match="limit"):
        fs.read_file("huge.txt")


def test_text_is_utf8(fs: FileSystemManager, workspace: Path) -> None:
    fs.write_file("greek.txt", "αβγ\n")
    assert (workspace / "greek.txt").read_bytes() == "αβγ\n".encode()
    (workspace / "latin1.txt").write_bytes(b"caf\xe9")
    with pytest.raises(WorkspaceError, match="not UTF-8"):
        fs.read_file("latin1.txt")
    with pytest.raises(WorkspaceError, match="must be text"):
        fs.write_file("bytes.txt", b"raw")  # type: ignore[arg-type]


def test_create_refuses_existing_and_delete_reports(fs: FileSystemManager) -> None:
    fs.create_file("a.txt", "one")
    with pytest.raises(WorkspaceError, match="already exists"):
        fs.create_file("a.txt", "two")
    assert fs.read_file("a.txt") == "one"
    assert fs.delete_file("a.txt") is True
    assert fs.delete_file("a.txt") is False
    assert not fs.exists("a.txt")


class _CrashingReplace(FileSystemManager):
    """Fails exactly at the rename, the edge of an atomic write."""

    def _replace(self, src: Path, dst: Path) -> None:
        raise OSError(5, "injected failure at rename")


def test_failed_rename_leaves_old_content_and_no_temp(workspace: Path, tmp_path: Path) -> None:
    fs = _CrashingReplace(workspace, backup_dir=tmp_path / "b")
    (workspace / "data.txt").write_text("old content")
    with pytest.raises(WorkspaceError, match="injected failure"):
        fs.write_file("data.txt", "new content")
    assert (workspace / "data.txt").read_text() == "old content"
    assert sorted(p.name for p in workspace.iterdir()) == ["data.txt"]


def test_process_killed_between_write_and_rename(workspace: Path, tmp_path: Path) -> None:
    (workspace / "data.py").write_text("VALUE = 'old'\n")
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from ai_agents.file_system import FileSystemManager

        class Dies(FileSystemManager):
            def _replace(self, src, dst):
                assert Path(src).read_text() == "VALUE = 'new'\\n"  # the temp file is complete
                os.kill(os.getpid(), signal.SIGKILL)  # power cut before the rename

        Dies({str(workspace)!r}, backup_dir={str(tmp_path / "b")!r}).write_file("data.py", "VALUE = 'new'\\n")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=30)
    assert proc.returncode == -9, proc.stderr
    assert (workspace / "data.py").read_text() == "VALUE = 'old'\n"
    leftovers = [p for p in workspace.iterdir() if p.name != "data.py"]
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".data.py")
    fs = FileSystemManager(workspace, backup_dir=tmp_path / "b")
    assert fs.find_files("**/*") == [Path("data.py")]  # temp files are never listed
    assert fs.recover(older_than=0) == 1
    assert sorted(p.name for p in workspace.iterdir()) == ["data.py"]


def test_backups_made_and_pruned(fs: FileSystemManager, tmp_path: Path) -> None:
    fs.write_file("pkg/mod.py", "A = 1\n")
    assert fs.backups_of("pkg/mod.py") == []  # nothing to back up on creation
    fs.write_file("pkg/mod.py", "A = 2\n")
    fs.write_file("pkg/mod.py", "A = 3\n")
    fs.delete_file("pkg/mod.py")
    backups = fs.backups_of("pkg/mod.py")
    assert [b.read_text() for b in backups] == ["A = 1\n", "A = 2\n", "A = 3\n"]
    assert all(b.is_relative_to(tmp_path / "backups" / "pkg") for b in backups)
    two_days_ago = time.time() - 2 * 86400
    os.utime(backups[0], (two_days_ago, two_days_ago))
    assert fs.prune_backups() == 1
    assert [b.read_text() for b in fs.backups_of("pkg/mod.py")] == ["A = 2\n", "A = 3\n"]


def test_write_keeps_file_mode(fs: FileSystemManager, workspace: Path) -> None:
    script = workspace / "run.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    fs.write_file("run.sh", "#!/bin/sh\necho hi\n")
    assert script.stat().st_mode & 0o777 == 0o755


def test_find_files_skips_tool_dirs_and_outside_links(fs: FileSystemManager, workspace: Path, tmp_path: Path) -> None:
    for rel in ["app.py", "pkg/core.py", "pkg/sub/util.py", "README.md",
                ".git/hooks/x.py", ".venv/lib/site.py", "node_modules/m/i.py", "pkg/__pycache__/c.py",
                "build/b.py", "dist/d.py", "x.egg-info/e.py", ".pytest_cache/p.py", "env/lib/v.py"]:
        (workspace / rel).parent.mkdir(parents=True, exist_ok=True)
        (workspace / rel).write_text("")
    (workspace / "env" / "pyvenv.cfg").write_text("home = /usr\n")
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "o.py").write_text("")
    (workspace / "linkdir").symlink_to(outside, target_is_directory=True)
    (workspace / "linkfile.py").symlink_to(outside / "deep" / "o.py")
    (workspace / "alias.py").symlink_to(workspace / "app.py")
    assert fs.find_files("**/*.py") == [Path(p) for p in ["alias.py", "app.py", "pkg/core.py", "pkg/sub/util.py"]]
    assert fs.find_files("*.py") == [Path("alias.py"), Path("app.py")]
    assert fs.find_files("pkg/*.py") == [Path("pkg/core.py")]
    assert fs.find_files("**/[Rr]EADME.md") == [Path("README.md")]
    with pytest.raises(WorkspaceError):
        fs.find_files("../**/*.py")


def test_parse_code_outline(fs: FileSystemManager) -> None:
    fs.write_file("shapes.py", textwrap.dedent('''\
        """Shapes and areas.

        More text.
        """
        import math
        from typing import Protocol as P, Any

        class Shape(P):
            """Anything with an area."""

            def area(self) -> float: ...

        class Circle:
            def __init__(self, r: float = 1.0) -> None:
                self.r = r

            @property
            def area(self) -> float:
                """Pi r squared."""
                return math.pi * self.r ** 2

        async def fetch(url: str, *, retries: int = 3, **kw: Any) -> bytes:
            """Download."""
            return b""
    '''))
    m = fs.parse_code("shapes.py")
    assert m.docstring == "Shapes and areas."
    assert [(i.module, i.names) for i in m.imports] == [("math", []), ("typing", ["Protocol", "Any"])]
    assert [c.name for c in m.classes] == ["Shape", "Circle"]
    assert m.classes[0].bases == ["P"] and m.classes[0].docstring == "Anything with an area."
    init, area = m.classes[1].methods
    assert init.signature == "def __init__(self, r: float=1.0) -> None" and init.lineno == 14
    assert area.decorators == ["property"] and area.docstring == "Pi r squared."
    (fn,) = m.functions
    assert fn.is_async and fn.signature == "async def fetch(url: str, *, retries: int=3, **kw: Any) -> bytes"
    assert (fn.lineno, fn.end_lineno) == (22, 24)
    summary = m.summary()
    assert "class Circle  [L13-20]" in summary and "async def fetch(" in summary and "Pi r squared." in summary
    fs.write_file("notes.txt", "not python")
    with pytest.raises(WorkspaceError, match="not a Python file"):
        fs.parse_code("notes.txt")


def test_check_workspace(fs: FileSystemManager, workspace: Path) -> None:
    ok = check_workspace(fs)
    assert ok.ok and ok.data["free_mb"] > 0
    too_much = check_workspace(fs, min_free_mb=10**12)
    assert not too_much.ok and "MB free" in too_much.detail
