"""Skip, with the reason shown, when a package registry the test needs does not answer.

Asked the way the daemon asks (pip and npm with their own defaults), so no registry host is named here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile

import pytest


def python_index_or_skip() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            done = subprocess.run([sys.executable, "-m", "pip", "--isolated", "download", "--quiet", "--no-deps",
                                   "--only-binary", ":all:", "-d", tmp, "attrs==23.2.0"],
                                  capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            pytest.skip("the Python package index did not answer within 120 s")
    if done.returncode != 0:
        pytest.skip(f"the Python package index is unreachable: {(done.stderr or done.stdout).strip()[-300:]}")


def npm_registry_or_skip() -> None:
    if not shutil.which("npm"):
        pytest.skip("npm is not on PATH")
    try:
        done = subprocess.run(["npm", "view", "jest@29", "version"], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.skip("the npm registry did not answer within 60 s")
    if done.returncode != 0:
        pytest.skip(f"the npm registry is unreachable: {(done.stderr or done.stdout).strip()[-300:]}")
