"""SQLite is the queue: a dispatch reads each role's first few tasks through an index into a bounded
in-memory prefetch; a later task of higher priority still goes first."""

from __future__ import annotations

from ai_agents.domain import Role, TaskStatus


def test_dispatch_holds_a_bounded_prefetch_and_respects_priority(build):
    app = build(None, {"paused": True}, start=False)
    orch = app.orchestrator
    low = [app.tasks.create("analysis", f"Low task {i}", priority="low", assigned_agent="cfo") for i in range(300)]
    orch.dispatch()
    held = orch.queues.depths()
    assert held["cfo"] == orch.prefetch(Role.CFO) and sum(held.values()) == held["cfo"]
    assert orch.queue_depths()["cfo"] == 300  # what status and metrics show: SQLite's count
    urgent = app.tasks.create("analysis", "Urgent", priority="high", assigned_agent="cfo")
    orch.dispatch()
    assert orch.queues.get(Role.CFO, timeout=0.1) == urgent.id
    assert orch.queues.get(Role.CFO, timeout=0.1) == low[0].id  # then first in, first out
    assert orch.queues.depths()["cfo"] <= orch.prefetch(Role.CFO) + 1
    assert app.tasks.get(urgent.id).status == TaskStatus.QUEUED  # taking an id claims nothing


def test_the_queue_reads_use_indexes_not_a_scan(build):
    app = build(None, {"paused": True}, start=False)
    plans = [
        app.db.query("EXPLAIN QUERY PLAN SELECT id FROM tasks WHERE status = 'queued' AND queue_role = 'cfo' "
                     "ORDER BY priority, created_at LIMIT 4"),
        app.db.query("EXPLAIN QUERY PLAN SELECT id FROM tasks WHERE status = 'queued' AND queue_role = 'cfo' "
                     "AND deadline IS NOT NULL AND deadline < '2030' ORDER BY deadline LIMIT 4"),
        app.db.query("EXPLAIN QUERY PLAN SELECT * FROM tasks WHERE status = 'queued' AND queue_role IS NULL "
                     "ORDER BY priority, created_at LIMIT 500"),
    ]
    for plan in plans:
        details = " ".join(row["detail"] for row in plan)
        assert "USING INDEX" in details and "TEMP B-TREE" not in details, details


def test_a_stale_prefetch_id_of_another_role_runs_nothing(build):
    """A refill can take an id again between a worker's get and its claim; once the task is handed to the next
    stage's role, that leftover id must not let a worker of the previous role run the next stage."""
    from ai_agents.orchestrator.worker import Worker

    app = build(None, {"paused": True}, start=False)
    orch = app.orchestrator
    task = app.tasks.create("analysis", "Handed on", assigned_agent="cfo")
    orch.dispatch()  # routed: queued for the CFO
    assert app.db.query_one("SELECT queue_role FROM tasks WHERE id = ?", (task.id,))["queue_role"] == "cfo"
    orch.queues.put(Role.RISK, task)  # the stale entry in another role's prefetch
    risk = Worker(orch, Role.RISK, 0)
    assert orch.queues.get(Role.RISK, timeout=0.1) == task.id
    orch.execute(risk, task.id)
    row = app.tasks.get(task.id)
    assert row.status == TaskStatus.QUEUED and row.lease_owner is None and row.attempts == 0, row
    assert app.tasks.claim(task.id, "n:1:cfo-0", 60, role="cfo") is not None  # its own role still can
