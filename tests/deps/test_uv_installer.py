"""``uv pip`` installs the project's packages when uv is there (else pip): the same hash-pinned lock.

uv comes from the Python index into ``~/.cache/ai-agents-ci/uv`` (.ci/install_registries.sh; or
``AI_AGENTS_UV``, or uv on PATH); without it, and without the index, the test SKIPS and says why.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ai_agents.config.models import DependenciesConfig
from ai_agents.deps.python_env import Pinned, ProjectPythonEnv
from ai_agents.errors import DependencyError
from tests.registries import python_index_or_skip


def uv_binary() -> str:
    cached = Path.home() / ".cache" / "ai-agents-ci" / "uv" / "bin" / "uv"
    for candidate in (os.environ.get("AI_AGENTS_UV"), shutil.which("uv"), str(cached)):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.skip("uv is not installed (.ci/install_registries.sh puts it in ~/.cache/ai-agents-ci/uv)")


def test_uv_installs_the_hash_pinned_set_and_refuses_a_wrong_hash(tmp_path):
    uv = uv_binary()
    python_index_or_skip()
    env = ProjectPythonEnv(tmp_path / "project-env", timeout=120, uv=uv)
    assert env.installer == "uv"
    pinned = env.resolve(["attrs==23.2.0"])
    assert [(p.name, p.version) for p in pinned] == [("attrs", "23.2.0")] and len(pinned[0].sha256) == 64
    wrong = Pinned("attrs", "23.2.0", "0" * 64)
    with pytest.raises(DependencyError, match="uv exit"):
        env.install([wrong])  # uv checks the lock's hash as pip does
    assert not list(env.site_packages().glob("attrs*"))
    env.install(pinned)
    assert (env.site_packages() / "attrs-23.2.0.dist-info").is_dir()
    assert not (tmp_path / "project-env" / ".cache").exists()  # nothing cached inside the env the tests see


def test_the_installer_is_uv_only_when_uv_is_on_path(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no uv here
    assert ProjectPythonEnv.from_config(DependenciesConfig(), tmp_path / "env").installer == "pip"
    fake = tmp_path / "uv"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    assert ProjectPythonEnv.from_config(DependenciesConfig(), tmp_path / "env").installer == "uv"
