"""Several daemons ("nodes") sharing one bare git remote, each with its own workspace clone and SQLite.

The shared store is not needed for what is tested here (git): a task is moved from one node to
another by creating it, with the same id and payload, in the other node's database.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from ai_agents.app import App, build_app
from ai_agents.config import load_config
from ai_agents.domain import Task, TaskStatus, TaskType
from ai_agents.git import GitManager
from ai_agents.logging_setup import Redactor, configure_logging
from ai_agents.orchestrator.merge_queue import MergeQueue
from ai_agents.orchestrator.pipeline import CodeFlow
from tests.chaos.scenario import task_title
from tests.conftest import deep_merge, wait_for
from tests.mainline import git


def bare_remote(tmp: Path) -> Path:
    """A bare repository whose main holds the workspace's first commit (README, .gitignore)."""
    remote = tmp / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    seed = GitManager(tmp / "seed")
    seed.ensure_repository(None)
    git(tmp / "seed", "push", "-q", str(remote), "main:main")
    return remote


def node_config(tmp: Path, name: str, remote: Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    root = tmp / name
    return deep_merge({
        "memory": {"database_path": str(root / "data" / "agents.db")},
        "file_system": {"workspace_path": str(root / "workspace"), "backup_dir": str(root / "backups")},
        "logging": {"file": str(root / "data" / "logs" / "agents.log")},
        "git": {"repository_url": str(remote), "shared_remote": True},
    }, extra or {})


def build_node(write_config: Any, fake: Any, tmp: Path, name: str, remote: Path,
               extra: dict[str, Any] | None = None) -> App:
    """One node: its own config beside its own data, workspace cloned from ``remote``; not started."""
    (tmp / name).mkdir(parents=True, exist_ok=True)
    path = write_config(fake, node_config(tmp, name, remote, extra), path=tmp / name / "config.yaml")
    settings = load_config(path)
    redactor = Redactor(settings.secret_values())
    configure_logging(settings.logging, redactor)
    return build_app(settings, path, redactor, watch=False)


def run_helper_task(node: App, name: str) -> tuple[Task, list[dict[str, Any]]]:
    """Submit helper ``name``'s code task on ``node``, start it, wait until the task is final, stop it:
    (the final task, its activity rows)."""
    try:
        task = node.orchestrator.submit_task("code", task_title(name), f"{name} brief")
        node.start()
        wait_for(lambda: node.tasks.get(task.id).status in (TaskStatus.COMPLETED, TaskStatus.FAILED),
                 timeout=120, message="task final")
        done = node.tasks.get(task.id)
        return done, node.memory.activities(task.id)
    finally:
        node.stop()


def code_flow(app: App) -> CodeFlow:
    flow = app.orchestrator.flows[TaskType.CODE]
    assert isinstance(flow, CodeFlow)
    return flow


def queue(app: App) -> MergeQueue:
    return code_flow(app).queue


def events(tmp: Path) -> list[dict[str, Any]]:
    """Every JSON log line the nodes wrote (logging is process-wide: it follows the last node built)."""
    rows = []
    for log in sorted(tmp.glob("*/data/logs/agents.log")):
        rows += [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return rows


def remote_main(remote: Path) -> str:
    return git(remote, "rev-parse", "main").strip()


def task_merges(remote: Path) -> list[str]:
    """Task-Id of every merge on the remote main's first-parent line, oldest first."""
    out = git(remote, "log", "--first-parent", "--merges", "--reverse",
              "--format=%(trailers:key=Task-Id,valueonly,separator=)", "main")
    return [line.strip() for line in out.splitlines() if line.strip()]


def agent_commits(remote: Path, task_id: str) -> list[str]:
    """The author name of each non-merge commit of ``task_id`` reachable from the remote's main."""
    out = git(remote, "log", "--no-merges", "--format=%an%x09%(trailers:key=Task-Id,valueonly,separator=)", "main")
    return sorted(line.split("\t")[0] for line in out.splitlines() if line.endswith(f"\t{task_id}"))
