"""The chaos tests' workload: N code tasks, each with its own module, tests and scripted answers.

Every task is "Implement helper hNN": QA writes ``tests/test_hNN.py`` (failing until
``hNN_helper.py`` exists), the Developer writes ``hNN_helper.py``. The scripted answers are matched on
the task brief (``"title": "Implement helper hNN"``), which only that task's prompts
hold; everything else (reviews, commit messages, validation, escalations) comes from
the demo story's generic rules.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from ai_agents.domain import TaskType
from ai_agents.llm.script import Script
from ai_agents.memory import Database, TaskStore
from tests.pipeline.conftest import story_rules

FINAL = ("completed", "failed", "cancelled")


def helper_names(count: int, start: int = 1) -> list[str]:
    return [f"h{i:02d}" for i in range(start, start + count)]


def task_title(name: str) -> str:
    return f"Implement helper {name}"


def _brief_marker(name: str) -> str:
    # task_brief() renders the task as indented JSON: only this task's own prompts hold this line.
    return f'"title": "{task_title(name)}"'


def _offset(name: str) -> int:
    return int(name[1:])


def module_name(name: str) -> str:
    # Not plain "h11": that is an installed package (httpx's), found before the workspace.
    return f"{name}_helper"


def helper_test_code(name: str) -> str:
    n, mod = _offset(name), module_name(name)
    return (f"import pytest\n\nfrom {mod} import {mod}\n\n\n"
            f"def test_{name}_adds_its_number():\n    assert {mod}(1) == {1 + n}\n\n\n"
            f"def test_{name}_rejects_text():\n    with pytest.raises(TypeError):\n        {mod}('x')\n")


def helper_code(name: str) -> str:
    n = _offset(name)
    return (f'"""A generated helper."""\n\n\n'
            f"def {module_name(name)}(value: int) -> int:\n"
            f'    """Return value plus {n}."""\n'
            f"    if not isinstance(value, int):\n"
            f'        raise TypeError("value must be an int")\n'
            f"    return value + {n}\n")


def helper_rules(names: list[str], messages: bool = True) -> list[dict[str, Any]]:
    """A TestSuite and a CodeChange rule per helper, matched on the task's own brief; with ``messages`` each
    carries its commit message (else the daemon asks for each separately: two model calls more per task)."""
    rules: list[dict[str, Any]] = []
    for name in names:
        rules.append({"when": {"schema": "TestSuite", "contains": _brief_marker(name)}, "reply": {
            "requirements": [f"{name}(value) adds {_offset(name)}"], "constraints": ["value is an int"],
            "module_path": f"{module_name(name)}.py", "test_path": f"tests/test_{name}.py",
            "test_code": helper_test_code(name),
            "commit_message": {"type": "test", "subject": f"add tests for {module_name(name)}"}}})
        rules.append({"when": {"schema": "CodeChange", "contains": _brief_marker(name)}, "reply": {
            "approach": "add the number",
            "files": [{"path": f"{module_name(name)}.py", "content": helper_code(name)}],
            "commit_message": {"type": "feat", "subject": f"add {module_name(name)}"}}})
    if not messages:
        for rule in rules:
            rule["reply"].pop("commit_message")
    return rules


def chaos_rules(names: list[str], messages: bool = True, **replace: Any) -> list[dict[str, Any]]:
    """Per-helper rules first, then the story's generic ones (``replace`` as in story_rules)."""
    return helper_rules(names, messages) + story_rules(**replace)


def chaos_script(names: list[str], messages: bool = True, **replace: Any) -> Script:
    return Script.from_data({"rules": chaos_rules(names, messages, **replace)})


def chaos_config(*, max_task_attempts: int = 3, shutdown_grace: float = 5.0, **extra: Any) -> dict[str, Any]:
    """Config overrides (merged over tests.conftest.base_config): no idle generation, fast loop."""
    base: dict[str, Any] = {
        "orchestrator": {"check_interval": 0.5, "heartbeat_interval": 0.5, "generate_when_idle": False,
                         "max_task_attempts": max_task_attempts, "shutdown_grace": shutdown_grace,
                         "task_timeout": 120},
        "deployment": {"enabled": False},
        "testing": {"timeout": 60},
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return base


def db_path(config: Path) -> Path:
    return config.parent / "data" / "agents.db"


def workspace(config: Path) -> Path:
    return config.parent / "workspace"


def submit_code_tasks(config: Path, names: list[str]) -> dict[str, str]:
    """Queue one code task per helper straight into the database (what ``submit`` does); name -> id."""
    db = Database(db_path(config))
    try:
        store = TaskStore(db)
        return {name: store.create(TaskType.CODE, task_title(name),
                                   f"{name}(value) returns value plus {_offset(name)}; "
                                   "text raises TypeError.").id
                for name in names}
    finally:
        db.close()


@contextmanager
def connect(config: Path) -> Iterator[sqlite3.Connection]:
    """A short-lived read connection to the daemon's database (never held across a kill)."""
    with closing(sqlite3.connect(db_path(config), timeout=30)) as conn:
        conn.row_factory = sqlite3.Row
        yield conn


def task_rows(config: Path) -> list[dict[str, Any]]:
    with connect(config) as conn:
        return [dict(r) for r in conn.execute(
            "SELECT id, title, status, error, attempts, payload FROM tasks ORDER BY created_at")]


def all_final(config: Path, ids: list[str] | None = None) -> bool:
    rows = [r for r in task_rows(config) if ids is None or r["id"] in ids]
    return bool(rows) and all(r["status"] in FINAL for r in rows)


def status_counts(config: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in task_rows(config):
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return counts
