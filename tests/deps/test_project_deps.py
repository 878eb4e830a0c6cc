"""The project's own dependencies through the real pipeline: gate, install from PyPI, sandboxed import, lock file.

Needs the Python package index (attrs, a small pure-Python wheel); SKIPS with the reason when it is unreachable.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ai_agents.commands import status_report
from ai_agents.domain import TaskStatus
from ai_agents.llm.script import Script
from tests.conftest import REPO, wait_for
from tests.pipeline.conftest import ROLE_PROMPTS
from tests.registries import python_index_or_skip

DEPS_SCRIPT = Path(__file__).resolve().parents[2] / "ai_agents" / "demo" / "script_deps.yaml"
SETTLED = (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.ESCALATED, TaskStatus.AWAITING_APPROVAL)


@pytest.fixture(scope="module")
def pypi() -> None:
    python_index_or_skip()


def rules(**developer: Any) -> list[dict[str, Any]]:
    out = copy.deepcopy(yaml.safe_load(DEPS_SCRIPT.read_text())["rules"])
    for rule in out:
        rule["when"]["contains"] = ROLE_PROMPTS[rule["when"].pop("agent")]
        if rule["when"]["schema"] == "CodeChange" and developer:
            rule.pop("reply", None)
            rule.update(developer)
    return out


def run_task(fake_llm, build, extra: dict[str, Any], **developer: Any):
    fake_llm.set_script(Script.from_data({"rules": rules(**developer)}))
    app = build(fake_llm, extra)
    task = app.orchestrator.submit_task("code", title="Add an immutable Point type",
                                        description="geometry.Point with distance_to")
    return app, task


def settle(app, task_id: str):
    return wait_for(lambda: (t := app.tasks.get(task_id)) and t.status in SETTLED and t, timeout=150,
                    message="the task settled")


def git(ws: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(ws), *args], capture_output=True, text=True, check=True).stdout


def test_allow_listed_package_installed_imported_by_sandboxed_tests_and_locked(fake_llm, build, pypi):
    app, task = run_task(fake_llm, build, {"dependencies": {"allow": ["attrs"]}})
    done = settle(app, task.id)
    assert done.status == TaskStatus.COMPLETED, done.error
    ws = Path(app.live.current.file_system.workspace_path)
    code = app.workspace.git.log(3)[1]
    assert sorted(git(ws, "show", "--name-only", "--format=", code["sha"]).split()) == [
        "geometry.py", "requirements.lock", "requirements.txt"]
    assert (ws / "requirements.txt").read_text() == "attrs==23.2.0\n"
    lock = (ws / "requirements.lock").read_text()
    assert "attrs==23.2.0 --hash=sha256:" in lock
    # installed into the project's env under the data directory, never the daemon's
    env = app.live.current.memory.database_path.parent / "project-env"
    assert list(env.glob("lib/python*/site-packages/attrs-23.2.0.dist-info"))
    installed = [a["details"] for a in app.memory.activities(task.id) if a["activity"] == "dependency_installed"]
    package = installed[0]["packages"][0]
    assert package["name"] == "attrs" and package["version"] == "23.2.0" and len(package["sha256"]) == 64
    # the sandboxed run imported the pinned attrs (not the daemon's), could not write the env, had no network:
    # QA's tests say so, and all of them passed
    assert done.result["tests_passed"] == 6
    report = status_report(app.live.current, "config.yaml")
    assert report["dependencies_installed"][0]["packages"][0]["version"] == "23.2.0"


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO / "main.py"), *args, "--config", str(config)],
                          capture_output=True, text=True, timeout=60)


def test_unlisted_package_waits_for_approval_then_installs(fake_llm, build, pypi, tmp_path):
    app, task = run_task(fake_llm, build, {"approvals": {"required_for": ["dependency"]}})
    waiting = settle(app, task.id)
    assert waiting.status == TaskStatus.AWAITING_APPROVAL
    pending = app.tasks.approvals()
    assert len(pending) == 1 and pending[0]["action"] == "dependency"
    details = pending[0]["details"]
    assert details["packages"][0]["name"] == "attrs" and details["packages"][0]["version"] == "23.2.0"
    assert "boilerplate" in details["why"]["attrs"]
    env = app.live.current.memory.database_path.parent / "project-env"
    assert not list(env.glob("lib/python*/site-packages/attrs*"))  # nothing installed before the approval
    listing = cli(tmp_path / "config.yaml", "approvals").stdout
    assert "dependency" in listing and "package attrs==23.2.0 sha256:" in listing and "boilerplate" in listing
    assert "approved dependency" in cli(tmp_path / "config.yaml", "approve", task.id).stdout
    app.orchestrator.dispatch()
    done = wait_for(lambda: (t := app.tasks.get(task.id)) and t.status in
                    (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.ESCALATED) and t, timeout=150,
                    message="the approved task finished")
    assert done.status == TaskStatus.COMPLETED, done.error
    assert "attrs==23.2.0 --hash=sha256:" in (Path(app.live.current.file_system.workspace_path)
                                                / "requirements.lock").read_text()


def test_denied_package_is_refused_and_the_developer_is_told(fake_llm, build):
    reply = copy.deepcopy(next(r for r in rules() if r["when"]["schema"] == "CodeChange")["reply"])
    reply["dependencies"] = [{"name": "evil-pkg", "version": "1.0", "why": "x"}]
    app, task = run_task(fake_llm, build, {"dependencies": {"allow": ["*"], "deny": ["evil-*"]},
                                           "agents": {"max_fix_attempts": 1, "max_approaches": 1}},
                         reply=reply)
    done = settle(app, task.id)
    assert done.status in (TaskStatus.FAILED, TaskStatus.ESCALATED)
    refused = [a["details"] for a in app.memory.activities(task.id) if a["activity"] == "dependency_refused"]
    assert refused and "denied by dependencies.deny" in refused[0]["reasons"][0]
    assert "dependency refused" in (done.error or "")
    ws = Path(app.live.current.file_system.workspace_path)
    assert not (ws / "requirements.lock").exists()
    assert not (app.live.current.memory.database_path.parent / "project-env").exists()  # nothing was resolved


def test_typo_package_fails_clearly_and_installs_nothing(fake_llm, build, pypi):
    reply = copy.deepcopy(next(r for r in rules() if r["when"]["schema"] == "CodeChange")["reply"])
    reply["dependencies"] = [{"name": "attrss-no-such-package-zq", "version": "1.0", "why": "typo"}]
    app, task = run_task(fake_llm, build, {"dependencies": {"allow": ["attrs*"]},
                                           "agents": {"max_fix_attempts": 1, "max_approaches": 1}},
                         reply=reply)
    done = settle(app, task.id)
    assert done.status in (TaskStatus.FAILED, TaskStatus.ESCALATED)
    refused = [a["details"] for a in app.memory.activities(task.id) if a["activity"] == "dependency_refused"]
    assert refused and "dependency unavailable" in refused[0]["reasons"][0]
    assert "attrss-no-such-package-zq" in refused[0]["reasons"][0]
    site = list((app.live.current.memory.database_path.parent / "project-env").glob("lib/python*/site-packages"))
    assert site and not [p for p in site[0].iterdir() if p.name.lower().startswith("attrs")]
    assert not (Path(app.live.current.file_system.workspace_path) / "requirements.lock").exists()


def test_an_approval_covers_only_the_packages_it_showed(tmp_path, pypi):
    from ai_agents.agents.models import DependencyRequest
    from ai_agents.config.live import LiveConfig
    from ai_agents.config.models import Settings
    from ai_agents.deps.gate import DependencyGate
    from ai_agents.deps.python_env import ProjectPythonEnv

    live = LiveConfig(Settings.model_validate({"approvals": {"required_for": ["dependency"]}}))
    env = ProjectPythonEnv(tmp_path / "project-env", timeout=120)
    gate = DependencyGate(live, lambda: env)
    first = gate.prepare("t1", [DependencyRequest(name="attrs", version="23.2.0")], lambda t, a: None)
    assert first.awaiting is not None and [p["name"] for p in first.awaiting["packages"]] == ["attrs"]
    shown = first.awaiting["packages"]
    # approved for attrs 23.2.0: a later attempt asking for another version is asked about again
    again = gate.prepare("t1", [DependencyRequest(name="attrs", version="23.1.0")], lambda t, a: "approved", shown)
    assert again.awaiting is not None and again.awaiting["packages"][0]["version"] == "23.1.0"
    assert not list(env.site_packages().glob("attr*"))
