"""Several daemons on one PostgreSQL: tasks per minute with 1, 2 and 3 nodes, claim latency, idle load.

    .venv/bin/python -m bench.cluster [--tasks 24] [--latency 1.0] [--idle-seconds 30]

A throwaway PostgreSQL (tests/pg.py: initdb + pg_ctl in a temporary directory) and the fake
model server answering after ``--latency`` seconds. For 1, 2 and 3 daemons (``python main.py
run``, each its own data directory and workspace, 2 CFO + 2 Risk workers each, default
intervals) on a fresh database: start them, then queue ``--tasks`` analysis tasks (two model
calls each) and time until every one is completed. Target: 3 nodes at least 2x one node.

Claim latency: three store handles (three "nodes") and three threads draining 300 queued tasks
with ``claim_next`` (``FOR UPDATE SKIP LOCKED``): median and p95 per claim.

Idle load: three daemons with nothing to do, default intervals (dispatch fallback every 5 s
with LISTEN/NOTIFY, heartbeat 5 s, main loop 60 s): transactions committed on their database
(``pg_stat_database.xact_commit``) over ``--idle-seconds``, per node per second. The last line
is ``cluster: speed-up 3 nodes = S.SS; idle queries/s per node = Q.Q``.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import yaml

from ai_agents.domain import TaskType
from ai_agents.llm.script import Script
from ai_agents.memory.postgres import PostgresDatabase
from ai_agents.memory.tasks import TaskStore
from tests.conftest import base_config, deep_merge
from tests.fakes.llm_server import FakeLLMServer
from tests.pg import PgServer, find_bindir

REPO = Path(__file__).resolve().parent.parent


def node_config(tmp: Path, i: int, fake: FakeLLMServer, url: str) -> Path:
    home = tmp / f"node{i}"
    home.mkdir(parents=True)
    data = deep_merge(base_config(home, fake.openai_base_url), {
        "memory": {"database_url": url},
        "node": {"id": f"bench{i}"},
        "orchestrator": {"check_interval": 60, "heartbeat_interval": 5, "task_timeout": 600},
        "agents": {"cfo": {"workers": 2}, "risk": {"workers": 2}},
        "metrics": {"listen": None},
        "logging": {"level": "WARNING"},
    })
    path = home / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def start_nodes(tmp: Path, n: int, fake: FakeLLMServer, url: str) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i in range(n):
        cfg = node_config(tmp, i, fake, url)
        out = open(cfg.parent / "daemon.out", "w")  # noqa: SIM115 - the child keeps it
        procs.append(subprocess.Popen([sys.executable, str(REPO / "main.py"), "run", "--config", str(cfg)],
                                      cwd=REPO, stdout=out, stderr=subprocess.STDOUT))
    db = PostgresDatabase(url, pool_size=2)
    try:
        deadline = time.monotonic() + 120
        while len(db.query("SELECT id FROM nodes WHERE stopped_at IS NULL")) < n:
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise SystemExit(f"the daemons did not start (see {tmp}/node*/daemon.out)")
            time.sleep(0.2)
    finally:
        db.close()
    time.sleep(1.0)  # workers started, first dispatch done
    return procs


def stop_nodes(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()


def throughput(server: PgServer, fake: FakeLLMServer, n: int, tasks: int) -> float:
    url = server.new_database(f"tp{n}_")
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as d:
        procs = start_nodes(Path(d), n, fake, url)
        db = PostgresDatabase(url, pool_size=2)
        try:
            store = TaskStore(db)
            t0 = time.monotonic()
            for i in range(tasks):
                store.create(TaskType.ANALYSIS, f"Bench task {i}", assigned_agent=("cfo", "risk")[i % 2])
            while int(db.query_one("SELECT COUNT(*) AS n FROM tasks WHERE status = 'completed'")["n"]) < tasks:
                if time.monotonic() - t0 > 600:
                    raise SystemExit("tasks did not complete within 10 minutes")
                time.sleep(0.1)
            took = time.monotonic() - t0
        finally:
            db.close()
            stop_nodes(procs)
    rate = tasks / took * 60
    print(f"{n} node(s): {tasks} tasks in {took:.1f} s = {rate:.1f} tasks/min")
    return rate


def claim_latency(server: PgServer, tasks: int = 300) -> tuple[float, float]:
    url = server.new_database("claims")
    handles = [PostgresDatabase(url, pool_size=2) for _ in range(3)]
    seed = TaskStore(handles[0])
    seed.route_many({seed.create(TaskType.ANALYSIS, f"Claim {i}").id: "cfo" for i in range(tasks)})
    times: list[float] = []
    lock = threading.Lock()

    def drain(store: TaskStore, name: str) -> None:
        while True:
            t0 = time.perf_counter()
            task = store.claim_next("cfo", name, lease_seconds=60)
            took = time.perf_counter() - t0
            if task is None:
                return
            with lock:
                times.append(took * 1000)

    threads = [threading.Thread(target=drain, args=(TaskStore(h), f"bench{i}:1:w")) for i, h in enumerate(handles)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for h in handles:
        h.close()
    assert len(times) == tasks, "a task was claimed twice or not at all"
    times.sort()
    median, p95 = statistics.median(times), times[int(0.95 * len(times)) - 1]
    print(f"claim latency (3 nodes racing, {tasks} claims, FOR UPDATE SKIP LOCKED): median {median:.2f} ms, "
          f"p95 {p95:.2f} ms")
    return median, p95


def xact_commit(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()").fetchone()
        return int(row[0]) if row else 0


def idle_load(server: PgServer, fake: FakeLLMServer, seconds: float, n: int = 3) -> float:
    url = server.new_database("idle")
    with tempfile.TemporaryDirectory(prefix="bench-cluster-idle-") as d:
        procs = start_nodes(Path(d), n, fake, url)
        try:
            time.sleep(3.0)
            c0, t0 = xact_commit(url), time.monotonic()
            time.sleep(seconds)
            time.sleep(1.5)  # backends report their counters at most once a second
            c1, t1 = xact_commit(url), time.monotonic() - 1.5
        finally:
            stop_nodes(procs)
    per_node = max(0, c1 - c0 - 1) / (t1 - t0) / n  # the measuring connection's own read counted once
    print(f"idle: {n} daemons, {c1 - c0} transactions in {t1 - t0:.1f} s = {per_node:.2f} per node per second")
    return per_node


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=24)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    bindir = find_bindir()
    if bindir is None:
        raise SystemExit("PostgreSQL server binaries not found: run .ci/install_postgres.sh")
    server = PgServer(bindir).start()
    script = Script.from_data({"rules": [
        {"when": {"schema": "WorkProduct"}, "reply": {"summary": "done", "document": "# done"}},
        {"when": {"schema": "Validation"}, "reply": {"valid": True, "score": 9, "issues": []}},
    ]})
    try:
        with FakeLLMServer(script, delay=args.latency) as fake:
            rates: dict[int, float] = {n: throughput(server, fake, n, args.tasks) for n in (1, 2, 3)}
            claim_latency(server)
            idle = idle_load(server, fake, args.idle_seconds)
    finally:
        server.stop()
    speedup = rates[3] / rates[1]
    results: dict[str, Any] = {"speedup_2": rates[2] / rates[1], "speedup_3": speedup}
    print(f"speed-up: 2 nodes {results['speedup_2']:.2f}, 3 nodes {speedup:.2f}")
    print("MET" if speedup >= 2.0 else "MISSED", "(target: 3 nodes at least 2x one node)")
    print(f"cluster: speed-up 3 nodes = {speedup:.2f}; idle queries/s per node = {idle:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
