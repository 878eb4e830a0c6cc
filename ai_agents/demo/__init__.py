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


def write_demo_config(root: Path, workspace: Path | None = None) -> Path:
    """The demo's config.yaml in ``root`` (so `status`, `tasks` and `doctor` work on it afterwards)."""
    text = (HERE / "config.yaml").read_text().replace("SCRIPT_PATH", str(HERE / "script.yaml"))
    if workspace is not None:
        text = text.replace("workspace_path: workspace", f"workspace_path: {workspace}")
    path = root / "config.yaml"
    path.write_text(text)
    return path


def run_demo(workspace: Path | None) -> int:
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
    config_path = write_demo_config(root, workspace.resolve() if workspace is not None else None)
    settings = load_config(config_path)
    if settings.agents.tools.enabled:
        seed_workspace(settings.file_system.workspace_path)  # the code the demo's task changes
    print("ai-agents demo: the real daemon on the built-in SCRIPTED model (answers from "
          f"{HERE / 'script.yaml'}); no API key, no network.")
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
    result = TestRunner.from_config(settings.testing, ws).run_tests()
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
