"""The PostgreSQL coordination parts without daemons: singleton jobs by advisory lock (one node at a
time, handed over when the holder's session ends, even by kill -9), LISTEN/NOTIFY wake-ups, and a
store that loses nothing when the server restarts under it (the three-node runs restart it mid-run)."""

from __future__ import annotations

import subprocess
import sys
import threading
from typing import Any

from ai_agents.cluster.advisory import AdvisoryLocks, lock_key
from ai_agents.cluster.wakeup import TaskListener
from ai_agents.domain import TaskType
from ai_agents.memory.postgres import PostgresDatabase
from ai_agents.memory.tasks import TASKS_CHANNEL, TaskStore
from tests.conftest import wait_for


def test_a_singleton_runs_on_one_node_and_is_handed_over_when_that_node_goes(pg_server: Any) -> None:
    url = pg_server.new_database("locks")
    a, b = AdvisoryLocks(url, "a"), AdvisoryLocks(url, "b")
    try:
        assert a.held("generation") and a.held("generation")  # taken, then kept
        assert not b.held("generation")  # one node at a time
        assert b.held("retention")  # each job its own lock
        a.close()  # node a stops: its locks are released and its session ends
        assert b.held("generation")
        assert not a.held("generation")  # a back again: b has it now
    finally:
        a.close()
        b.close()


def test_the_lock_of_a_killed_process_goes_to_the_next_node(pg_server: Any) -> None:
    url = pg_server.new_database("locks_kill")
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time, psycopg\n"
        f"c = psycopg.connect({url!r}, autocommit=True)\n"
        f"assert c.execute('SELECT pg_try_advisory_lock({lock_key('generation')})').fetchone()[0]\n"
        "print('held', flush=True)\n"
        "time.sleep(600)\n")], stdout=subprocess.PIPE, text=True)
    other = AdvisoryLocks(url, "b")
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert not other.held("generation")
        holder.kill()  # kill -9: no clean-up ran
        holder.wait(10)
        wait_for(lambda: other.held("generation"), timeout=15, message="the lock handed over")
    finally:
        holder.kill()
        other.close()


def test_a_task_queued_through_one_node_wakes_the_listeners_of_the_others(pg_server: Any) -> None:
    url = pg_server.new_database("notify")
    woken = threading.Event()
    listener = TaskListener(url, TASKS_CHANNEL, woken.set)
    listener.start()
    db = PostgresDatabase(url, pool_size=2)
    try:
        wait_for(lambda: db.query_one("SELECT COUNT(*) AS n FROM pg_stat_activity WHERE query LIKE 'LISTEN%'")["n"],
                 timeout=10, message="the listener connected")
        assert not woken.is_set()
        TaskStore(db).create(TaskType.ANALYSIS, "Wake up")
        assert woken.wait(5), "no wake-up for the queued task"
        assert listener.notifications >= 1
    finally:
        listener.stop()
        db.close()


def test_a_store_loses_nothing_across_a_server_restart_and_reconnects(pg_server: Any) -> None:
    db = PostgresDatabase(pg_server.new_database("restart"), pool_size=2)
    try:
        store = TaskStore(db)
        before = store.create(TaskType.ANALYSIS, "Queued before the restart")
        pg_server.restart()  # every pooled connection is broken now
        assert store.get(before.id).title == "Queued before the restart"  # read through a new connection
        after = store.create(TaskType.ANALYSIS, "Queued after the restart")
        titles = {r["title"] for r in db.query("SELECT title FROM tasks")}
        assert titles == {"Queued before the restart", "Queued after the restart"}
        assert store.get(after.id) is not None
    finally:
        db.close()
