"""The Tech Lead's measured quality: ruff on a private copy of the texts shown, never on the workspace."""

from __future__ import annotations

from pathlib import Path

from ai_agents.orchestrator.quality import quality_report, ruff_issues


def test_style_problems_come_from_the_texts_given_not_from_the_files_on_disk(tmp_path: Path, monkeypatch):
    # What is on disk in the working directory (rewritten by code under test, say) plays no part.
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("import os\nimport sys\n")
    (tmp_path / "ruff.py").write_text("raise SystemExit('a ruff.py in the workspace ran')\n")
    monkeypatch.chdir(tmp_path)
    issues, tool = ruff_issues({"pkg/mod.py": "import os\n\n\ndef f(x):\n    return x + 1\n",
                                "notes.txt": "not python"})
    assert tool == "ruff"
    assert issues == ["pkg/mod.py:1 F401 `os` imported but unused"]


def test_a_path_outside_the_copy_is_not_written_or_checked(tmp_path: Path):
    outside = tmp_path / "outside.py"
    issues, tool = ruff_issues({f"../../../..{outside}": "import os\n", "ok.py": "x = 1\n"})
    assert tool == "ruff" and issues == [] and not outside.exists()


def test_the_report_counts_complexity_and_says_when_there_is_nothing_to_check():
    report = quality_report({"a.py": "def f(x):\n    if x:\n        return 1\n    return 2\n"}, None)
    assert report["style_tool"] == "ruff" and report["max_complexity"] == 2 and report["style_issues"] == []
    assert quality_report({"README.md": "# hi\n"}, None)["style_tool"] == "no files"
