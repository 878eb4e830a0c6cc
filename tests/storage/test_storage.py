"""One storage suite, two backends (SQLite, PostgreSQL): the memory layer, the queue's claims, leases
and fencing, approvals, the response cache, the shared budget, migrations and concurrent claims."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

from ai_agents.config.live import LiveConfig
from ai_agents.config.models import Settings
from ai_agents.domain import TaskStatus, TaskType, iso, utcnow
from ai_agents.errors import BudgetExceeded
from ai_agents.llm.usage import BudgetGuard
from ai_agents.memory.database import MIGRATIONS
from ai_agents.memory.storage import Storage
from ai_agents.memory.store import MemoryStore
from ai_agents.memory.tasks import TaskStore
from ai_agents.ops.metrics import collect_metrics


def test_migrations_reach_the_newest_version_and_reopening_is_a_no_op(db: Storage, second_db: Storage) -> None:
    assert db.schema_version == len(MIGRATIONS)
    second_db.migrate()  # another daemon starting on the same store
    assert second_db.schema_version == len(MIGRATIONS)
    for table in ("tasks", "approvals", "llm_calls", "llm_cache", "merge_queue", "nodes", "agent_memory"):
        assert db.query(f"SELECT COUNT(*) AS n FROM {table}") == [{"n": 0}]
    assert db.integrity_ok()


def test_memory_activity_decisions_and_state(db: Storage) -> None:
    memory = MemoryStore(db)
    memory.remember("ceo", "plan", {"steps": [1, 2]})
    memory.remember("ceo", "plan", {"steps": [3]})  # the upsert keeps one row
    assert memory.recall("ceo", "plan") == {"steps": [3]}
    assert memory.memories("ceo") == {"plan": {"steps": [3]}}
    memory.log_activity("qa", "task_started", {"n": 1}, task_id="t1")
    memory.log_activity("qa", "task_done", {"pct": "100%"}, task_id="t1")  # a '%' survives the translation
    assert [a["activity"] for a in memory.activities("t1")] == ["task_started", "task_done"]
    assert memory.activities("t1")[1]["details"] == {"pct": "100%"}
    memory.record_decision("ceo", "retry", {"why": "flaky"}, task_id="t1")
    assert memory.decisions(task_id="t1")[0]["decision_data"] == {"why": "flaky"}
    memory.set_state("heartbeat", {"pid": 1})
    memory.set_state("heartbeat", {"pid": 2})
    value, at = memory.get_state("heartbeat")
    assert value == {"pid": 2} and at is not None


def test_response_cache_replace_hits_and_prune(db: Storage) -> None:
    memory = MemoryStore(db)
    memory.cache_put("k", {"text": "one"}, ttl_seconds=60)
    memory.cache_put("k", {"text": "two"}, ttl_seconds=60)  # replaced, not duplicated
    assert memory.cache_get("k") == {"text": "two"}
    assert db.query_one("SELECT hits FROM llm_cache WHERE key = ?", ("k",)) == {"hits": 1}
    memory.cache_put("old", {"text": "x"}, ttl_seconds=-1)
    assert memory.cache_get("old") is None
    assert memory.cache_prune() == 1


def test_claims_leases_and_fencing(db: Storage, second_db: Storage) -> None:
    tasks, other = TaskStore(db), TaskStore(second_db)
    task = tasks.create(TaskType.ANALYSIS, "Study the market")
    claimed = tasks.claim(task.id, "node-a:1:ceo-0", lease_seconds=60)
    assert claimed is not None and claimed.lease_token == 1 and claimed.attempts == 1
    assert other.claim(task.id, "node-b:1:ceo-0", lease_seconds=60) is None  # claimed once
    assert tasks.renew_lease(task.id, "node-a:1:ceo-0", 1)
    # The lease expires; another node reclaims it and claims it again with a new token.
    db.execute("UPDATE tasks SET lease_expires_at = ? WHERE id = ?", (iso(utcnow() - timedelta(seconds=1)), task.id))
    assert other.expired_leases(max_attempts=3) == ([task.id], [])
    again = other.claim(task.id, "node-b:1:ceo-0", lease_seconds=60)
    assert again is not None and again.lease_token == 2 and again.attempts == 2
    # The first attempt is fenced off: its heartbeat, completion and hand-off are refused.
    assert not tasks.renew_lease(task.id, "node-a:1:ceo-0", 1)
    assert not tasks.lease_current(task.id, "node-a:1:ceo-0", 1)
    assert tasks.complete(task.id, "node-a:1:ceo-0", {"late": True}, token=1) is None
    children = other.complete(task.id, "node-b:1:ceo-0", {"ok": True},
                              [{"type": "analysis", "title": "Follow-up"}], token=2)
    assert children is not None and len(children) == 1
    final = tasks.get(task.id)
    assert final is not None and final.status == TaskStatus.COMPLETED and final.result == {"ok": True}


def test_claim_next_by_priority_release_and_recovery_of_own_leases(db: Storage) -> None:
    tasks = TaskStore(db)
    low = tasks.create(TaskType.ANALYSIS, "Low", priority="low")
    high = tasks.create(TaskType.ANALYSIS, "High", priority="high")
    tasks.route_many({low.id: "ceo", high.id: "ceo"})
    first = tasks.claim_next("ceo", "node-a:1:ceo-0", lease_seconds=60)
    assert first is not None and first.id == high.id
    assert tasks.release(high.id, "node-a:1:ceo-0", "budget", token=first.lease_token)
    assert tasks.get(high.id).attempts == 0  # type: ignore[union-attr]
    a = tasks.claim_next("ceo", "node-a:1:ceo-0", lease_seconds=60)
    b = tasks.claim_next("ceo", "node-b:1:ceo-0", lease_seconds=60)
    assert {a.id, b.id} == {low.id, high.id}  # type: ignore[union-attr]
    assert tasks.claim_next("ceo", "node-c:1:ceo-0", lease_seconds=60) is None
    # Node a restarts: it recovers its own lease only; node b's runs on.
    requeued, _ = tasks.recover_orphans(max_attempts=3, owner_prefix="node-a:")
    assert requeued == [a.id]  # type: ignore[union-attr]
    assert tasks.get(b.id).status == TaskStatus.IN_PROGRESS  # type: ignore[union-attr]


def test_approvals_requested_decided_once_and_expired(db: Storage, second_db: Storage) -> None:
    tasks, other = TaskStore(db), TaskStore(second_db)
    task = tasks.create(TaskType.CODE, "Ship it")
    claimed = tasks.claim(task.id, "n:1:w", 60)
    assert claimed is not None
    assert tasks.request_approval(task.id, "merge", {"branch": "b"}, {"stage": "merge"}, owner="n:1:w",
                                  token=claimed.lease_token)
    assert [a["task_id"] for a in other.approvals()] == [task.id]
    assert other.decide_approval(task.id, approved=True, decided_by="cli") is not None
    assert tasks.decide_approval(task.id, approved=False, decided_by="cli") is None  # decided once
    assert tasks.approval_status(task.id, "merge") == "approved"
    again = tasks.claim(task.id, "n:1:w", 60)
    assert again is not None and again.payload["stage"] == "merge"
    tasks.request_approval(task.id, "deploy", {}, owner="n:1:w", token=again.lease_token)
    db.execute("UPDATE approvals SET requested_at = ? WHERE action = 'deploy'",
               (iso(utcnow() - timedelta(hours=2)),))
    assert other.expire_approvals(timeout_seconds=60) == [task.id]
    assert tasks.approval_status(task.id, "deploy") == "rejected"


def _settings(**budget: Any) -> LiveConfig:
    return LiveConfig(Settings.model_validate({"budget": budget}))


def test_budget_is_shared_a_cap_reached_through_one_daemon_stops_the_other(db: Storage, second_db: Storage) -> None:
    a, b = MemoryStore(db), MemoryStore(second_db)
    guard_a, guard_b = BudgetGuard(_settings(daily_usd=0.05), a), BudgetGuard(_settings(daily_usd=0.05), b)
    guard_b.check()
    a.record_llm_call(agent="qa", task_id="t", provider="openai", model="m", tokens_in=10, tokens_out=5,
                      cost_usd=0.03)
    guard_b.check()  # under the cap
    b.record_llm_call(agent="developer", task_id="t", provider="openai", model="m", cost_usd=0.03)
    with pytest.raises(BudgetExceeded):
        guard_a.check()
    with pytest.raises(BudgetExceeded):
        guard_b.check()
    usage = b.usage_since(utcnow() - timedelta(hours=1))
    assert usage["calls"] == 2 and usage["tokens"] == 15 and usage["cost_usd"] == pytest.approx(0.06)
    assert a.task_usage("t") == {"turns": 2, "tokens": 15, "cost_usd": pytest.approx(0.06)}


def test_metrics_and_task_listing_read_the_same_figures_on_both(db: Storage) -> None:
    tasks, memory = TaskStore(db), MemoryStore(db)
    ids = [tasks.create(TaskType.ANALYSIS, f"Task {i}").id for i in range(3)]
    assert [t.id for t in tasks.list()] == ids  # oldest first
    claimed = tasks.claim(ids[0], "n:1:w", 60)
    tasks.complete(ids[0], "n:1:w", {}, token=claimed.lease_token)  # type: ignore[union-attr]
    figures = collect_metrics(db, memory, tasks, {"ceo": 2})
    assert figures["tasks_completed"] == 1 and figures["tasks_by_status"]["queued"] == 2
    assert figures["task_duration_seconds"]["count"] == 1 and figures["queue_depth"] == {"ceo": 2}
    assert tasks.counts() == {"completed": 1, "queued": 2}
    assert tasks.busy_counts(exclude_types=(TaskType.GENERATION,)) == {"completed": 1, "queued": 2}


def test_concurrent_claims_two_daemons_four_threads_no_task_claimed_twice(db: Storage, second_db: Storage) -> None:
    seed = TaskStore(db)
    ids = [seed.create(TaskType.ANALYSIS, f"Job {i}").id for i in range(40)]
    seed.route_many(dict.fromkeys(ids, "ceo"))
    claimed: list[str] = []
    lock = threading.Lock()

    def worker(store: TaskStore, name: str) -> None:
        while (task := store.claim_next("ceo", name, lease_seconds=60)) is not None:
            with lock:
                claimed.append(task.id)

    stores = [TaskStore(db), TaskStore(second_db)]
    threads = [threading.Thread(target=worker, args=(stores[i % 2], f"node-{i % 2}:1:w{i}")) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(claimed) == sorted(ids)  # every task once, none twice
    assert {r["n"] for r in db.query("SELECT attempts AS n FROM tasks")} == {1}


def test_dashboard_reads_overview_task_pages_charts_and_approvals_on_both(db: Storage, tmp_path) -> None:
    from ai_agents.dashboard.queries import DashboardData, TaskFilter

    tasks, memory = TaskStore(db), MemoryStore(db)
    done = tasks.create(TaskType.ANALYSIS, "Market 50% study")
    tasks.create(TaskType.CODE, "Other_thing")
    claimed = tasks.claim(done.id, "n:1:cfo-0", 60)
    tasks.complete(done.id, "n:1:cfo-0", {}, token=claimed.lease_token)  # type: ignore[union-attr]
    memory.record_llm_call(agent="cfo", task_id=done.id, provider="openai", model="m", tokens_in=3, cost_usd=0.5)
    data = DashboardData(Settings.model_validate({"file_system": {"workspace_path": str(tmp_path / "ws")}}), db)
    overview = data.overview()
    assert {t["id"] for t in overview["recent"]} == {done.id, tasks.list()[1].id}
    page = data.task_page(TaskFilter(q="50%"))  # the search's own % is escaped, and case is ignored
    assert [t["id"] for t in page.rows] == [done.id]
    assert [t["title"] for t in data.task_page(TaskFilter(q="other_")).rows] == ["Other_thing"]
    charts = data.charts()
    assert sum(charts["completed"]) == 1 and charts["tokens"][-1] == 3 and len(charts["durations"]) == 1
    assert data.approvals() == ([], [])
