"""What sandboxed tests may import (testing/site_view.py), through real pytest subprocesses.

The standard library, pytest, and exactly the packages the workspace's requirements.lock pins from the
project's virtualenv: not the daemon's own packages, not a package another task installed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ai_agents.testing import TestRunner
from ai_agents.testing.site_view import locked, project_view
from tests.workspace.test_ws_runner import needs_bwrap, project

SITE = f"lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"


def plant(env: Path, name: str, version: str, body: str) -> None:
    """A distribution installed in the project's virtualenv (what another task's install leaves)."""
    site = env / SITE
    (site / name).mkdir(parents=True)
    (site / name / "__init__.py").write_text(body)
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "RECORD").write_text(f"{name}/__init__.py,,\n{info.name}/METADATA,,\n{info.name}/RECORD,,\n")


IMPORTS = {
    "tests/test_imports.py": """
        import importlib

        import pytest


        @pytest.mark.parametrize("name", ["sneaky", "pinned", "yaml", "pydantic", "json", "pluggy"])
        def test_import(name):
            importlib.import_module(name)
        """,
}


def outcomes(tmp_path: Path, lock: str | None) -> dict[str, str]:
    env = tmp_path / "project-env"
    plant(env, "sneaky", "1.0", "VALUE = 'sneaky'\n")
    plant(env, "pinned", "2.0", "VALUE = 'pinned'\n")
    files = dict(IMPORTS)
    if lock is not None:
        files["requirements.lock"] = lock
    ws = project(tmp_path / "ws", files)
    result = TestRunner(ws, project_env=env).run_tests()
    failed = {f.test_name.split("[")[-1].rstrip("]"): f.error_message for f in result.failures}
    assert any("imports: the standard library, pytest" in p for p in result.protections)
    return {name: ("failed: " + failed[name] if name in failed else "passed")
            for name in ("sneaky", "pinned", "yaml", "pydantic", "json", "pluggy")}


def test_tests_import_only_what_the_lock_pins_and_the_framework(tmp_path):
    seen = outcomes(tmp_path, "# Written by the ai-agents daemon\npinned==2.0 --hash=sha256:" + "0" * 64 + "\n")
    assert seen["pinned"] == "passed"  # pinned and installed
    assert seen["json"] == "passed" and seen["pluggy"] == "passed"  # the standard library; pytest's own
    # Installed by another task, not in this workspace's lock: as on a fresh checkout, not importable.
    assert "No module named 'sneaky'" in seen["sneaky"]
    # The daemon's own packages are not the project's.
    assert "No module named 'yaml'" in seen["yaml"]
    assert "No module named 'pydantic'" in seen["pydantic"]


def test_without_a_lock_the_project_has_no_packages(tmp_path):
    seen = outcomes(tmp_path, None)
    assert "No module named 'pinned'" in seen["pinned"] and "No module named 'sneaky'" in seen["sneaky"]
    assert seen["json"] == "passed"


def test_the_view_reports_what_the_lock_and_the_environment_disagree_on(tmp_path):
    env = tmp_path / "env"
    plant(env, "pinned", "2.0", "")
    plant(env, "extra", "1.0", "")
    view = project_view(env / SITE, "pinned==1.5 --hash=sha256:ab\nabsent==3.0\n# note==9\n")
    assert view.pinned == 2
    assert view.missing == ["absent==3.0"]
    assert view.other == ["pinned==1.5 (installed: 2.0)"]  # offered, and logged as a mismatch
    assert view.hidden == ["extra"]
    assert sorted(p.name for p in view.entries) == ["pinned", "pinned-2.0.dist-info"]
    assert locked("Foo_Bar==1.0 --hash=sha256:x\nbaz == 2 ; python_version > '3'\n") == {"foo-bar": "1.0", "baz": "2"}


@needs_bwrap
@pytest.mark.parametrize("hostile", [
    "import sys\nsys.path.append({site!r})\nimport sneaky\n",              # the real site-packages by path
    "import site\nsite.addsitedir({site!r})\nimport sneaky\n",             # or through site
])
def test_a_test_that_reaches_for_the_environment_by_path_is_no_different_from_code_that_does(tmp_path, hostile):
    """The views decide what plain imports find; a test may still add a directory to sys.path itself (it
    is QA's code, reviewed as such): the environment is read-only in the sandbox either way."""
    env = tmp_path / "project-env"
    plant(env, "sneaky", "1.0", "VALUE = 1\n")
    code = hostile.format(site=str(env / SITE))
    ws = project(tmp_path / "ws", {"tests/test_reach.py": code + "\n\ndef test_reach():\n    assert sneaky.VALUE == 1\n"
                                   "    open(sneaky.__file__, 'a').write('x')\n"})
    result = TestRunner(ws, project_env=env).run_tests()
    assert not result.passed  # the environment cannot be written from a test
    assert (env / SITE / "sneaky" / "__init__.py").read_text() == "VALUE = 1\n"
