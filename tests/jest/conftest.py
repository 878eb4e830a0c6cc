"""A real jest from the npm registry, installed once into a cache directory (.ci/run fills it first).

``AI_AGENTS_JEST_DIR`` (default ``~/.cache/ai-agents-ci/jest``) holds ``node_modules/jest``; when it
is missing the fixture runs npm once; without node, npm or the registry the tests SKIP and say why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

PACKAGES = ("jest@29", "ts-jest@29", "typescript@5")  # ts-jest and typescript: the TypeScript case


def jest_dir() -> Path:
    return Path(os.environ.get("AI_AGENTS_JEST_DIR") or Path.home() / ".cache" / "ai-agents-ci" / "jest")


@pytest.fixture(scope="session")
def jest_modules() -> Path:
    """A node_modules directory holding a real jest."""
    root = jest_dir()
    modules = root / "node_modules"
    if (modules / "jest" / "bin" / "jest.js").is_file() and (modules / "ts-jest").is_dir():
        return modules
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("jest tests need node and npm on PATH")
    root.mkdir(parents=True, exist_ok=True)
    if not (root / "package.json").exists():
        (root / "package.json").write_text('{"name": "ai-agents-jest-cache", "private": true}\n')
    try:
        proc = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts", *PACKAGES],
                              cwd=root, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        pytest.skip("the npm registry did not deliver jest within 300s (unreachable?)")
    if proc.returncode != 0 or not (modules / "jest" / "bin" / "jest.js").is_file():
        last = " / ".join(proc.stderr.strip().splitlines()[-3:])
        pytest.skip(f"could not install jest from the npm registry (unreachable?): {last}")
    return modules


def jest_project(ws: Path, modules: Path, *, commit: bool = False) -> None:
    """``ws`` becomes a jest project: package.json (jest in devDependencies) and node_modules;
    ``commit``: package.json committed on the current branch, as the project's owner would."""
    (ws / "package.json").write_text('{"name": "demo", "private": true, "devDependencies": {"jest": "^29"}}\n')
    link = ws / "node_modules"
    if not link.exists():
        link.symlink_to(modules, target_is_directory=True)
    if commit:
        subprocess.run(["git", "-C", str(ws), "add", "package.json"], check=True)
        subprocess.run(["git", "-C", str(ws), "-c", "user.name=Owner", "-c", "user.email=owner@example.com",
                        "commit", "-qm", "chore: jest project"], check=True)
