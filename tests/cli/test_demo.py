"""`python main.py demo`: the zero-setup story, end to end, in a subprocess with no key and no network."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from tests.conftest import REPO


def test_demo_runs_the_story_in_under_a_minute(tmp_path):
    ws = tmp_path / "demo-ws"
    env = {k: v for k, v in os.environ.items() if "API_KEY" not in k}
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, str(REPO / "main.py"), "demo", "--workspace", str(ws)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120, env=env)
    elapsed = time.monotonic() - t0
    assert out.returncode == 0, out.stdout + out.stderr
    shown = out.stdout[-4000:]  # every failure below shows what the demo printed
    assert elapsed < 60, shown
    assert "SCRIPTED model" in out.stdout and "demo finished" in out.stdout, shown
    assert "tests: 5 passed, 0 failed (passed)" in out.stdout, shown
    log = subprocess.run(["git", "-C", str(ws), "log", "--topo-order", "--format=%an|%s"], capture_output=True,
                         text=True, check=True).stdout.splitlines()
    assert [line.split("|")[0] for line in log] == ["Tech Lead Agent", "Developer Agent", "QA Agent",
                                                    "System Agent"], (log, shown)
    assert log[1].endswith("feat(textutils): add slugify helper")
    assert (ws / "textutils.py").exists() and (ws / "tests" / "test_textutils.py").exists()
    # the first version failed a test, the fix passed, the deploy was recorded
    assert out.stdout.count("code_tested") == 2 and "deploy_succeeded" in out.stdout, shown
    again = subprocess.run([sys.executable, str(REPO / "main.py"), "demo", "--workspace", str(ws)], cwd=tmp_path,
                           capture_output=True, text=True, timeout=60, env=env)
    assert again.returncode == 2 and "not empty" in again.stderr
