"""``python main.py demo``: the real daemon end to end on the built-in scripted model, no key, no network."""

from __future__ import annotations

import io
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ai_agents.config.models import Settings
from ai_agents.demo.seed import seed_workspace
from ai_agents.domain import FINAL_STATUSES, Task, TaskStatus, TaskType

if TYPE_CHECKING:
    from ai_agents.app import App

HERE = Path(__file__).resolve().parent
DEMO_TIMEOUT = 60.0


SCENARIOS = ("story", "js", "deps")


def write_demo_config(root: Path, workspace: Path | None = None, scenario: str = "story") -> Path:
    """The demo's config.yaml in ``root`` (so `status`, `tasks` and `doctor` work on it afterwards)."""
    script = HERE / ("script.yaml" if scenario == "story" else f"script_{scenario}.yaml")
    text = (HERE / "config.yaml").read_text().replace("SCRIPT_PATH", str(script))
    if workspace is not None:
        text = text.replace("workspace_path: workspace", f"workspace_path: {workspace}")
    if scenario != "story":  # script_<scenario>.yaml answers in both modes (tool calls, whole files)
        allow = ["jest"] if scenario == "js" else ["attrs"]
        text += f"dependencies:\n  allow: {allow}\n"
    path = root / "config.yaml"
    path.write_text(text)
    return path


def run_demo(workspace: Path | None, scenario: str = "story") -> int:
    """Run the story; print the git log and the test summary; keep the workspace."""
    from ai_agents.app import build_app
    from ai_agents.config import load_config
    from ai_agents.logging_setup import Redactor, configure_logging

    if workspace is not None:
        root = workspace.resolve().parent / f".{workspace.name}-demo"
        if workspace.exists() and any(workspace.iterdir()):
            print(f"ai-agents: {workspace} is not empty; the demo needs a fresh workspace", file=sys.stderr)
            return 2
    else:
        root = Path(tempfile.mkdtemp(prefix="ai-agents-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    config_path = write_demo_config(root, workspace.resolve() if workspace is not None else None, scenario)
    settings = load_config(config_path)
    if scenario == "js":
        print("ai-agents demo (js): jest comes from the npm REGISTRY (network needed for this step only; the "
              "tests themselves run sandboxed, without network).")
        if not _seed_js(settings):
            return 1
    elif scenario == "story" and settings.agents.tools.enabled:
        seed_workspace(settings.file_system.workspace_path)  # the code the demo's task changes
    if scenario == "deps":
        print("ai-agents demo (deps): attrs (allow-listed) comes from PyPI into the project's own virtualenv "
              "(network needed for the install only; the tests run sandboxed, without network).")
    print("ai-agents demo: the real daemon on the built-in SCRIPTED model (answers from "
          f"{settings.llm.script_path}); no API key" + (", no network." if scenario == "story" else "."))
    print(f"workspace: {settings.file_system.workspace_path}\nconfig:    {config_path}\n"
          f"logs:      {settings.logging.file}\n")
    log_stream = io.StringIO()  # JSON logs go to the log file; keep the terminal readable
    configure_logging(settings.logging, Redactor(()), stream=log_stream)
    started = time.monotonic()
    app = build_app(settings, config_path, Redactor(()), watch=False)
    app.start()
    try:
        task = _wait_for_code_task(app, started)
    finally:
        app.stop()
    elapsed = time.monotonic() - started
    return _report(settings, task, elapsed)


def _seed_js(settings: Settings) -> bool:
    """A small CommonJS project: package.json with jest, installed by the daemon's npm installer."""
    from ai_agents.deps.npm_env import npm_install
    from ai_agents.errors import DependencyError

    ws = settings.file_system.workspace_path
    ws.mkdir(parents=True, exist_ok=True)
    (ws / "package.json").write_text('{\n  "name": "demo-js",\n  "private": true,\n  "scripts": {"test": "jest"},\n'
                                     '  "devDependencies": {"jest": "^29.7.0"}\n}\n')
    print("installing jest with npm (--ignore-scripts) ...", flush=True)
    try:
        installed = npm_install(settings, ws)
    except DependencyError as e:
        print(f"ai-agents demo (js): could not install jest from the npm registry: {e}", file=sys.stderr)
        return False
    jest = next((p for p in installed if p["name"] == "jest"), None)
    print(f"installed {len(installed)} npm packages (jest {jest['version'] if jest else '?'}); "
          "package-lock.json is committed with the workspace\n")
    return True


def _wait_for_code_task(app: App, started: float) -> Task | None:
    while time.monotonic() - started < DEMO_TIMEOUT:
        code = [t for t in app.tasks.list() if t.type == TaskType.CODE]
        if code and (code[0].status in FINAL_STATUSES or code[0].status == TaskStatus.ESCALATED):
            return code[0]
        for t in code:
            stage = t.payload.get("stage", "tests")
            print(f"  [{time.monotonic() - started:5.1f}s] {t.title}: {t.status.value} ({stage})", flush=True)
        time.sleep(1.0)
    return next((t for t in app.tasks.list() if t.type == TaskType.CODE), None)


def _report(settings: Settings, task: Task | None, elapsed: float) -> int:
    from ai_agents.git import GitManager
    from ai_agents.testing import TestRunner

    ws = settings.file_system.workspace_path
    git = GitManager.from_config(settings.git, ws, ())
    print(f"\n$ git -C {ws} log --graph (newest first)")
    for entry in git.log(12):
        print(f"  {entry['sha'][:8]}  {entry['author_name']:<18} {entry['message'].splitlines()[0]}")
    from ai_agents.deps.python_env import ENV_DIR

    result = TestRunner.from_config(settings.testing, ws,
                                    project_env=settings.memory.database_path.parent / ENV_DIR).run_tests()
    print(f"\ntests: {result.passed_count} passed, {result.failed_count} failed ({result.outcome})")
    print("\nactivity of the task:")
    from ai_agents.memory import Database, MemoryStore

    memory = MemoryStore(Database(settings.memory.database_path))
    if task is not None:
        for row in memory.activities(task.id):
            details = row.get("details") or {}
            extra = (f" ({details.get('turns')} turns, {details.get('tool_calls')} tool calls, changed: "
                     f"{', '.join(details.get('files') or [])})" if row["activity"] == "tool_loop_finished" else "")
            print(f"  {row['agent_name']:<10} {row['activity']}{extra}")
    deployment, _ = memory.get_state("deployment")
    for record in (deployment or {}).get("history", [])[-1:]:
        print(f"\ndeployment: {record['type']} {record['action']} of {record['commit'][:8]} {record['status']}: "
              f"{record['detail']}")
    ok = task is not None and task.status == TaskStatus.COMPLETED and result.passed
    print(f"\n{'demo finished' if ok else 'demo did NOT finish as scripted'} in {elapsed:.1f}s; "
          f"task {task.id if task else '-'} {task.status.value if task else 'missing'}. Workspace kept at {ws}")
    if shutil.which("git"):
        print(f"look around: git -C {ws} log --stat")
    print(f"             python main.py status --config {settings.memory.database_path.parent.parent / 'config.yaml'}")
    return 0 if ok else 1
