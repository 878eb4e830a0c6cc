"""The CEO's own generation and escalation tasks stay out of ``tasks``, ``status`` and the dashboard by default;
``--all`` (and the dashboard's "CEO's own tasks" box, or a type filter) shows them."""

from __future__ import annotations

import json

import pytest

from ai_agents.cli import main
from ai_agents.config import load_config
from ai_agents.domain import TaskStatus, TaskType
from ai_agents.memory import Database, TaskStore


@pytest.fixture
def mixed(write_config):
    """Two tasks of the company's work and two of the CEO's bookkeeping, in a real SQLite file."""
    config = write_config(None)
    db = Database(load_config(config).memory.database_path)
    tasks = TaskStore(db)
    work = [tasks.create("code", "Write a slug helper", assigned_agent="developer"),
            tasks.create("analysis", "Market survey", assigned_agent="cfo")]
    internal = [tasks.create(TaskType.GENERATION, "Generate new work from the company's goals", assigned_agent="ceo"),
                tasks.create(TaskType.ESCALATION, f"Decide on escalated task {work[0].id}", assigned_agent="ceo")]
    tasks.transition(internal[0].id, TaskStatus.COMPLETED)
    yield config, [t.id for t in work], [t.id for t in internal]
    db.close()


def run(capsys, *args: str) -> str:
    assert main(list(args)) == 0
    return capsys.readouterr().out


def test_tasks_and_status_leave_the_ceo_bookkeeping_out_unless_all(mixed, capsys):
    config, work, internal = mixed
    c = ("--config", str(config))
    assert [r["id"] for r in json.loads(run(capsys, "tasks", *c, "--json"))] == work
    assert [r["id"] for r in json.loads(run(capsys, "tasks", *c, "--json", "--all"))] == work + internal
    text = run(capsys, "tasks", *c)
    assert "queued (2)" in text and "Generate new work" not in text
    assert "(2 CEO-internal generation/escalation task(s) not shown: --all)" in text
    assert "completed (1)" in run(capsys, "tasks", *c, "--all")
    assert "no tasks with status completed" in run(capsys, "tasks", *c, "--status", "completed")

    status = json.loads(run(capsys, "status", *c, "--json"))
    assert status["tasks_by_status"] == {"queued": 2}
    assert set(status["tasks_by_agent"]) == {"developer", "cfo"}
    everything = json.loads(run(capsys, "status", *c, "--json", "--all"))
    assert everything["tasks_by_status"] == {"queued": 3, "completed": 1}
    assert everything["tasks_by_agent"]["ceo"] == {"queued": 1, "completed": 1}
    assert "tasks:     queued 2\n" in run(capsys, "status", *c)


def test_dashboard_counts_and_lists_leave_the_ceo_bookkeeping_out_unless_asked(mixed):
    from ai_agents.dashboard.queries import DashboardData, TaskFilter

    config, work, internal = mixed
    settings = load_config(config)
    data = DashboardData(settings, Database(settings.memory.database_path))
    overview = data.overview()
    assert overview["by_status"] == {"queued": 2} and "ceo" not in overview["by_agent"]
    assert {r["id"] for r in overview["recent"]} == set(work)
    assert {r["id"] for r in data.task_page(TaskFilter()).rows} == set(work)
    assert {r["id"] for r in data.task_page(TaskFilter(all=True)).rows} == set(work + internal)
    assert [r["id"] for r in data.task_page(TaskFilter(type="generation")).rows] == internal[:1]
    assert [r["id"] for r in data.task_page(TaskFilter(q=internal[1])).rows] == internal[1:]  # by id: always found

    from ai_agents.dashboard import DashboardServer
    from tests.dashboard.conftest import Client

    server = DashboardServer(settings, "127.0.0.1:0")
    server.start()
    try:
        client = Client("127.0.0.1", server.address[1])
        default, shown = client.get("/tasks").body, client.get("/tasks?all=1").body
        assert work[0] in default and internal[0] not in default and "2 tasks" in default
        assert internal[0] in shown and "4 tasks" in shown and 'name="all" value="1" checked' in shown
    finally:
        server.stop()
