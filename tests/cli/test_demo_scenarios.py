"""`python main.py demo --scenario js|deps`: a jest project and a task needing a PyPI package, in a subprocess.

Both need a registry (npm for jest, PyPI for attrs) and SKIP, saying so, when it does not answer.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.registries import npm_registry_or_skip, python_index_or_skip


def demo(tmp_path, scenario: str) -> tuple[subprocess.CompletedProcess[str], str]:
    ws = tmp_path / "demo-ws"
    env = {k: v for k, v in os.environ.items() if "API_KEY" not in k}
    out = subprocess.run([sys.executable, str(REPO / "main.py"), "demo", "--scenario", scenario, "--workspace",
                          str(ws)], cwd=tmp_path, capture_output=True, text=True, timeout=400, env=env)
    log = subprocess.run(["git", "-C", str(ws), "log", "--name-only", "--format=%an: %s"], capture_output=True,
                         text=True).stdout
    return out, log


# Both scenarios run in the slow step (each installs from a registry: ~15-25 s); the default suite runs the
# `demo` command's story (tests/cli/test_demo.py), a jest project end to end (tests/jest/test_jest_pipeline.py)
# and attrs from the package index through the pipeline (tests/deps/test_project_deps.py).
@pytest.mark.slow
def test_demo_js_scenario(tmp_path):
    npm_registry_or_skip()
    out, log = demo(tmp_path, "js")
    shown = (out.stdout + out.stderr)[-4000:]
    assert out.returncode == 0, shown
    assert "npm REGISTRY" in out.stdout and "demo finished" in out.stdout, shown
    assert "tests: 4 passed, 0 failed (passed)" in out.stdout, shown
    assert "QA Agent: test(temperature)" in log and "tests/temperature.test.js" in log
    assert "Developer Agent: feat(temperature)" in log and "src/temperature.js" in log
    assert "package-lock.json" in log  # the exact versions are committed


@pytest.mark.slow
def test_demo_deps_scenario(tmp_path):
    python_index_or_skip()
    out, log = demo(tmp_path, "deps")
    shown = (out.stdout + out.stderr)[-4000:]
    assert out.returncode == 0, shown
    assert "tests: 6 passed, 0 failed (passed)" in out.stdout and "dependency_installed" in out.stdout, shown
    assert "requirements.lock" in log and "geometry.py" in log
    lock = (tmp_path / "demo-ws" / "requirements.lock").read_text()
    assert "attrs==23.2.0 --hash=sha256:" in lock
