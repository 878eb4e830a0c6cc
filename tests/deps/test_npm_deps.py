"""npm packages the Developer asks for: the same gate (allow, deny, approval), installed into the workspace's
node_modules by real npm (``--ignore-scripts``), package.json and package-lock.json to commit.

Needs the npm registry (is-number, a tiny package without dependencies); SKIPS with the reason when unreachable.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from ai_agents.agents.models import DependencyRequest
from ai_agents.config.live import LiveConfig
from ai_agents.config.models import Settings
from ai_agents.deps.gate import DependencyGate, GateResult
from ai_agents.deps.python_env import ProjectPythonEnv
from tests.registries import npm_registry_or_skip

IS_NUMBER = DependencyRequest(name="is-number", version="7.0.0", ecosystem="npm", why="validate numbers")


@pytest.fixture(scope="module")
def npm_registry() -> None:
    npm_registry_or_skip()


def gate_for(tmp_path: Path, config: dict[str, Any]) -> tuple[DependencyGate, Path]:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "package.json").write_text('{"name": "p", "private": true}\n')
    env = ProjectPythonEnv(tmp_path / "project-env")  # never created: no Python package is asked for
    live = LiveConfig(Settings.model_validate(config))
    return DependencyGate(live, lambda: env, node_modules=ws / "node_modules"), ws


def ask(gate: DependencyGate, ws: Path, request: DependencyRequest, status: str | None = None,
        approved: list[dict[str, Any]] | None = None) -> GateResult:
    def read(path: str) -> str | None:
        return (ws / path).read_text() if (ws / path).exists() else None

    return gate.prepare("t1", [request], lambda task, action: status, approved, read=read)


def test_allowed_npm_package_is_installed_with_its_integrity_and_lock(tmp_path, npm_registry):
    gate, ws = gate_for(tmp_path, {"dependencies": {"allow": ["is-number"]}})
    result = ask(gate, ws, IS_NUMBER)
    assert result.failures == [] and result.awaiting is None
    installed = json.loads((ws / "node_modules" / "is-number" / "package.json").read_text())
    assert installed["version"] == "7.0.0"
    (package,) = result.packages()
    assert package["name"] == "is-number" and package["integrity"].startswith("sha512-")
    files = result.files(lambda path: None)
    assert json.loads(files["package.json"])["dependencies"] == {"is-number": "7.0.0"}
    lock = json.loads(files["package-lock.json"])["packages"]["node_modules/is-number"]
    assert lock["version"] == "7.0.0" and lock["integrity"] == package["integrity"]
    assert not (tmp_path / "project-env").exists()


def test_denied_and_misspelt_npm_packages_install_nothing(tmp_path, npm_registry):
    gate, ws = gate_for(tmp_path, {"dependencies": {"allow": ["*"], "deny": ["is-*"]}})
    denied = ask(gate, ws, IS_NUMBER)
    assert "denied by dependencies.deny" in denied.failures[0] and not denied.files(lambda p: None)
    typo = ask(gate, ws, DependencyRequest(name="no-such-package-zq-numbr", version="1.0.0", ecosystem="npm"))
    assert "dependency unavailable" in typo.failures[0] and "no-such-package-zq-numbr" in typo.failures[0]
    assert not (ws / "node_modules").exists()


def test_unlisted_npm_package_waits_for_approval_then_installs(tmp_path, npm_registry):
    gate, ws = gate_for(tmp_path, {"approvals": {"required_for": ["dependency"]}})
    waiting = ask(gate, ws, IS_NUMBER)
    assert waiting.awaiting is not None and not waiting.failures
    (shown,) = waiting.awaiting["packages"]
    assert shown["name"] == "is-number" and shown["version"] == "7.0.0" and shown["integrity"].startswith("sha512-")
    assert waiting.awaiting["why"] == {"is-number": "validate numbers"}
    assert not (ws / "node_modules").exists()  # nothing before the approval
    rejected = ask(gate, ws, IS_NUMBER, "rejected", [shown])
    assert "rejected by a human" in rejected.failures[0] and not (ws / "node_modules").exists()
    done = ask(gate, ws, IS_NUMBER, "approved", [shown])
    assert done.failures == [] and (ws / "node_modules" / "is-number" / "package.json").is_file()


def test_npm_asks_only_the_configured_registry_within_the_time_limit(tmp_path):
    if not shutil.which("npm"):
        pytest.skip("npm is not on PATH")
    # A registry nobody answers at: npm would retry for a minute; the install time limit ends it first.
    gate, ws = gate_for(tmp_path, {"dependencies": {"allow": ["*"], "npm_registry": "http://127.0.0.1:9/",
                                                    "install_timeout": 5}})
    result = ask(gate, ws, IS_NUMBER)
    assert "dependency unavailable" in result.failures[0] and "timed out after 5s" in result.failures[0]
    assert not (ws / "node_modules").exists() and not result.files(lambda p: None)
