"""Analysis-only variants (--runslow): three real daemons (`python main.py run`, each its own
data directory and workspace) on one PostgreSQL: every task completed exactly once; kill -9 of one
node mid-task and its tasks are resumed by the others after its leases expire; PostgreSQL restarted
mid-run loses nothing; the budget is shared (a cap reached through one node stops them all)."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from ai_agents.domain import TaskType
from ai_agents.llm.script import Script
from ai_agents.memory.postgres import PostgresDatabase
from ai_agents.memory.store import MemoryStore
from ai_agents.memory.tasks import TaskStore
from tests.conftest import base_config, deep_merge, wait_for
from tests.daemon import Daemon, cli
from tests.fakes.llm_server import FakeLLMServer

GOOD = {"valid": True, "score": 9, "issues": []}


def node_config(tmp: Path, i: int, fake: FakeLLMServer, url: str, extra: dict[str, Any] | None = None) -> Path:
    home = tmp / f"node{i}"
    home.mkdir()
    data = deep_merge(base_config(home, fake.openai_base_url), {
        "memory": {"database_url": url, "pool_size": 4},
        "node": {"id": f"n{i}", "heartbeat_interval": 0.5},
        # A short stall timeout: a dead node's leases expire (no heartbeat) within seconds.
        "orchestrator": {"stall_timeout": 4, "task_timeout": 120, "max_task_attempts": 3},
        "agents": {"cfo": {"workers": 2}, "risk": {"workers": 2}},
        **(extra or {})})
    path = home / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def submit(config: Path, db: PostgresDatabase, n: int, prefix: str) -> None:
    """The first through the CLI (``submit`` on the cluster's store), the rest straight into the store."""
    assert cli(config, "submit", f"{prefix} 0", "--type", "analysis").returncode == 0
    tasks = TaskStore(db)
    for i in range(1, n):
        tasks.create(TaskType.ANALYSIS, f"{prefix} {i}")


@pytest.mark.slow  # the default suite runs the mixed code + analysis variant (test_three_nodes_code.py)
@pytest.mark.timeout(240)
def test_three_nodes_kill9_and_postgres_restart_each_task_once_budget_shared(
        pg_server: Any, fake_llm: FakeLLMServer, tmp_path: Path) -> None:
    run_cluster(pg_server, fake_llm, tmp_path, tasks=9)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_three_nodes_thirty_tasks(pg_server: Any, fake_llm: FakeLLMServer, tmp_path: Path) -> None:
    run_cluster(pg_server, fake_llm, tmp_path, tasks=30)


def run_cluster(pg_server: Any, fake_llm: FakeLLMServer, tmp_path: Path, *, tasks: int) -> None:
    fake_llm.set_script(Script.from_data({"rules": [
        {"when": {"schema": "WorkProduct"}, "reply": {"summary": "done", "document": "# done"}},
        {"when": {"schema": "Validation"}, "reply": GOOD},
    ]}))
    fake_llm.delay = 0.4  # every task is in flight for a while: the kill lands mid-task
    url = pg_server.new_database("cluster")
    configs = [node_config(tmp_path, i, fake_llm, url, {"budget": {"daily_usd": 1000}}) for i in range(3)]
    db = PostgresDatabase(url, pool_size=2)
    try:
        submit(configs[0], db, tasks, "Cluster task")
        db.execute("UPDATE tasks SET assigned_agent = CASE WHEN substr(id, 1, 1) < '8' THEN 'cfo' ELSE 'risk' END")
        ids = [r["id"] for r in db.query("SELECT id FROM tasks")]
        nodes = [Daemon(c).start() for c in configs]
        try:
            def count(status: str) -> int:
                return int(db.query_one("SELECT COUNT(*) AS n FROM tasks WHERE status = ?", (status,))["n"])

            # Node 0 dies holding a lease.
            held = wait_for(lambda: [r["id"] for r in db.query(
                "SELECT id FROM tasks WHERE status = 'in_progress' AND lease_owner LIKE 'n0:%'")],
                timeout=60, interval=0.02, message="node n0 running a task")
            nodes[0].kill9()
            wait_for(lambda: count("completed") >= 3, timeout=60, message="some tasks completed")
            pg_server.restart()  # the daemons reconnect
            wait_for(lambda: count("completed") == tasks, timeout=30 + 4 * tasks, interval=0.3,
                     message=f"all {tasks} tasks completed")

            # Shared budget: spend recorded through node 1's store reaches the cap for every node.
            MemoryStore(db).record_llm_call(agent="cfo", task_id=None, provider="openai", model="gpt-4o-mini",
                                            cost_usd=1000.0)
            submit(configs[1], db, 3, "After the cap")
            late = [r["id"] for r in db.query("SELECT id FROM tasks WHERE title LIKE 'After the cap%'")]
            time.sleep(6)  # several dispatch and main-loop cycles of both live nodes: neither starts them
            assert {r["status"] for r in db.query("SELECT status FROM tasks WHERE id = ANY(?)", (late,))} \
                == {"queued"}
            status = cli(configs[1], "status")
            assert status.returncode == 0
            assert "n0 on" in status.stdout and "NOT ALIVE" in status.stdout and "alive" in status.stdout
            for node in nodes[1:]:
                node.signal(signal.SIGTERM)
                assert node.wait(20) == 0
        finally:
            for node in nodes:
                node.stop()

        rows = {r["id"]: r for r in db.query("SELECT id, status, attempts FROM tasks WHERE id = ANY(?)", (ids,))}
        assert all(r["status"] == "completed" for r in rows.values())
        completions = Counter(r["task_id"] for r in db.query(
            "SELECT task_id FROM activity_logs WHERE activity = 'task_completed'"))
        assert {completions[i] for i in ids} == {1}  # each completed exactly once, cluster-wide
        for task_id in held:  # node 0's tasks: resumed by another node after the lease expired
            assert rows[task_id]["attempts"] == 2
        docs = [p for c in configs for p in (c.parent / "workspace" / "docs").glob("*.md")]
        assert len(docs) == tasks
        assert not any(e.get("event") == "task_completed" for e in nodes[0].events()
                       if e.get("task_id") in held)
    finally:
        db.close()
