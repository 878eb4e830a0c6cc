"""Three real daemons on one PostgreSQL and one bare git remote (git.shared_remote), code and
analysis tasks on the scripted fake model: each task completed exactly once cluster-wide; each code
task has one QA commit, one Developer commit and one merge commit on the remote's main; main is
green at every first-parent merge commit; a node killed with kill -9 mid-task has its task
resumed by the others (from the task's branch on the remote) after its lease expires; PostgreSQL
restarted mid-run loses nothing; the budget is shared (a cap reached through one node stops all);
``status`` lists the nodes and never prints the database password (taken from the environment)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
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
from tests.chaos.invariants import duplicate_problems, task_git_summary
from tests.chaos.scenario import chaos_config, chaos_rules, helper_names, task_title
from tests.conftest import REPO, base_config, deep_merge, wait_for
from tests.daemon import Daemon
from tests.fakes.llm_server import FakeLLMServer
from tests.mainline import git, merge_commits_green
from tests.merge_queue_remote.nodes import bare_remote

PRODUCT = {"summary": "studied", "document": "## Findings\n\nSmall.", "follow_up_tasks": []}


PASSWORD = "pw-" + "Kd7" * 6  # the test server trusts local connections: any password is accepted


def node_config(tmp: Path, i: int, fake: FakeLLMServer, url: str, remote: Path) -> Path:
    home = tmp / f"node{i}"
    home.mkdir()
    data = deep_merge(base_config(home, fake.openai_base_url), deep_merge(chaos_config(max_task_attempts=3), {
        "memory": {"database_url": url.replace("agents@", "agents:${AI_AGENTS_DB_PASSWORD}@"), "pool_size": 6},
        "budget": {"daily_usd": 1000},
        "node": {"id": f"n{i}", "heartbeat_interval": 0.5},
        "git": {"repository_url": str(remote), "shared_remote": True},
        "orchestrator": {"stall_timeout": 8, "task_timeout": 300},
    }))
    path = home / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run_code_cluster(pg_server: Any, fake: FakeLLMServer, tmp: Path, *, code: int, analysis: int,
                     kill: bool) -> None:
    names = helper_names(code)
    fake.set_script(Script.from_data({"rules": [{"when": {"schema": "WorkProduct"}, "reply": PRODUCT},
                                                *chaos_rules(names)]}))
    fake.delay = 0.05
    url = pg_server.new_database("code")
    remote = bare_remote(tmp)
    configs = [node_config(tmp, i, fake, url, remote) for i in range(3)]
    db = PostgresDatabase(url, pool_size=2)
    try:
        store = TaskStore(db)
        code_ids = {store.create(TaskType.CODE, task_title(n), f"{n}(value) returns value plus {int(n[1:])}; "
                                 "text raises TypeError.").id: n for n in names}
        analysis_ids = [store.create(TaskType.ANALYSIS, f"Study market segment {i}", assigned_agent="cfo").id
                        for i in range(analysis)]
        ids = [*code_ids, *analysis_ids]
        env = {"AI_AGENTS_DB_PASSWORD": PASSWORD}
        nodes = [Daemon(c, env=env).start() for c in configs]

        def count(*statuses: str) -> int:  # of the submitted tasks (not the CEO's own bookkeeping tasks)
            marks = ",".join("?" * len(statuses))
            return int(db.query_one(f"SELECT COUNT(*) AS n FROM tasks WHERE id = ANY(?) AND status IN ({marks})",
                                    (ids, *statuses))["n"])

        held: list[str] = []
        victim = 0
        try:
            if kill:  # whichever node runs a code task first dies (kill -9) in the middle of it
                running = wait_for(lambda: db.query(
                    "SELECT id, lease_owner FROM tasks WHERE status = 'in_progress' AND type = 'code'"),
                    timeout=120, interval=0.05, message="a node running a code task")
                victim = int(running[0]["lease_owner"].split(":")[0][1:])
                nodes[victim].kill9()
                held = [r["id"] for r in running if r["lease_owner"].startswith(f"n{victim}:")]
            wait_for(lambda: count("completed") >= 1, timeout=120, interval=0.2, message="a task completed")
            pg_server.restart()  # the daemons reconnect and lose nothing
            wait_for(lambda: count("completed", "failed") == len(ids),
                     timeout=120 + 20 * len(ids), interval=0.5, message="every task final")
            # The budget is shared: spend recorded through one store reaches the cap for every node.
            MemoryStore(db).record_llm_call(agent="cfo", task_id=None, provider="openai", model="gpt-4o-mini",
                                            cost_usd=1000.0)
            late = [store.create(TaskType.ANALYSIS, f"After the cap {i}", assigned_agent="cfo").id for i in range(2)]
            time.sleep(5)  # several dispatch and main-loop cycles of both live nodes: neither starts them
            assert {r["status"] for r in db.query("SELECT status FROM tasks WHERE id = ANY(?)", (late,))} == {"queued"}
            status = subprocess.run([sys.executable, str(REPO / "main.py"), "status", "--config",
                                     str(configs[(victim + 1) % 3])],
                                    cwd=REPO, capture_output=True, text=True, timeout=60,
                                    env={**os.environ, **env})
            assert status.returncode == 0, status.stderr
            assert "database:  postgresql://agents:***@127.0.0.1" in status.stdout
            assert f"node:      n{victim} on" in status.stdout and "NOT ALIVE" in status.stdout
            assert PASSWORD not in status.stdout + status.stderr
            survivors = [n for i, n in enumerate(nodes) if not (kill and i == victim)]
            for node in survivors:
                node.signal(signal.SIGTERM)
                assert node.wait(30) == 0
        finally:
            for node in nodes:
                node.stop()

        rows = {r["id"]: r for r in db.query("SELECT id, status, attempts, error FROM tasks")}
        unfinished = [f"{i} {rows[i]['status']}: {rows[i]['error']}" for i in ids if rows[i]["status"] != "completed"]
        if unfinished:
            pytest.fail("not completed:\n" + "\n".join(unfinished))
        completions = Counter(r["task_id"] for r in db.query(
            "SELECT task_id FROM activity_logs WHERE activity = 'task_completed'"))
        assert {completions[i] for i in ids} == {1}  # each task completed once, cluster-wide
        for task_id in code_ids:  # one QA, one Developer and one merge commit each, on the remote's main
            assert task_git_summary(remote, task_id) == {"qa": 1, "developer": 1, "merge": 1}, task_id
        assert duplicate_problems(remote) == []
        for node in nodes:
            assert PASSWORD not in node.stdout_path.read_text()  # never logged
        # Node 0's task: its lease expired (no heartbeat) and another node requeued it and finished it.
        reclaimed = {e.get("task_id") for i, node in enumerate(nodes) if i != victim for e in node.events()
                     if e.get("event") == "task_stuck"}
        assert set(held) <= reclaimed
        clone = tmp / "check"
        git(tmp, "clone", "-q", str(remote), str(clone))
        checked = merge_commits_green(clone, tmp)
        assert len(checked) >= code  # every code merge (and the documents' merges) tested green
    finally:
        db.close()


# Slow step (~30 s): the default suite has its parts cheaper: two nodes racing into one shared remote
# and a task resumed on another node from its branch (tests/merge_queue_remote/test_shared_remote.py),
# the shared budget and claims on two stores (tests/storage), advisory locks handed over after kill -9
# and a store across a PostgreSQL restart (test_coordination.py), hostile answers on PostgreSQL.
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_three_nodes_code_and_analysis_kill9_each_merged_once_main_green(
        pg_server: Any, fake_llm: FakeLLMServer, tmp_path: Path) -> None:
    run_code_cluster(pg_server, fake_llm, tmp_path, code=2, analysis=2, kill=True)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_three_nodes_thirty_tasks_code_and_analysis(pg_server: Any, fake_llm: FakeLLMServer, tmp_path: Path) -> None:
    run_code_cluster(pg_server, fake_llm, tmp_path, code=20, analysis=10, kill=True)
