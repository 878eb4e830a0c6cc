"""Dashboard page times with a large store: 100,000 tasks, their activity rows and LLM calls.

Fills a fresh SQLite file (in a temp dir), serves it with the real DashboardServer and times
each page over HTTP (median of N requests, and the first, uncached one). Target: every page's
median under 250 ms on the build machine (charts are cached 30 s: their first load scans the
last 14 days of LLM calls). Prints figures; not a test.

    .venv/bin/python -m bench.dashboard_pages [--tasks 100000] [--runs 5]
"""

from __future__ import annotations

import argparse
import http.client
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ai_agents.config.loader import parse_config_text
from ai_agents.dashboard import DashboardServer
from ai_agents.memory import Database

TARGET_MS = 250.0
STATUSES = ["completed"] * 6 + ["failed", "escalated", "queued", "in_progress", "awaiting_approval", "cancelled"]
AGENTS = ["qa", "developer", "tech_lead", "ceo", "cfo"]


def fill(db: Database, n: int) -> str:
    rng = random.Random(1)
    start = datetime.now(UTC) - timedelta(days=30)
    tasks, acts, calls = [], [], []
    for i in range(n):
        created = start + timedelta(seconds=i * 30 * 86400 / n)
        status = rng.choice(STATUSES)
        finished = created + timedelta(seconds=rng.randint(20, 7200)) if status in ("completed", "failed") else None
        tid = f"t{i:07d}"
        tasks.append((tid, "code", f"Task number {i} about {rng.choice(['slugify', 'parse', 'format', 'count'])}",
                      status, rng.choice(AGENTS), created.isoformat(), (finished or created).isoformat(),
                      finished.isoformat() if finished else None))
        for k in range(2):
            acts.append(("developer", "code_tested", '{"outcome": "passed"}', created.isoformat(), tid))
            calls.append(((created + timedelta(seconds=k)).isoformat(), rng.choice(AGENTS), tid, "openai",
                          "gpt-4o-mini", 800, 200, 0.0003, 900.0))
    with db.transaction() as conn:
        conn.executemany("INSERT INTO tasks (id, type, title, status, assigned_agent, created_at, updated_at, "
                         "finished_at) VALUES (?,?,?,?,?,?,?,?)", tasks)
        conn.executemany("INSERT INTO activity_logs (agent_name, activity, details, timestamp, task_id) "
                         "VALUES (?,?,?,?,?)", acts)
        conn.executemany("INSERT INTO llm_calls (timestamp, agent, task_id, provider, model, tokens_in, tokens_out, "
                         "cost_usd, latency_ms) VALUES (?,?,?,?,?,?,?,?,?)", calls)
        conn.execute("INSERT INTO approvals (task_id, action, status, details, requested_at) "
                     "VALUES (?, 'deploy', 'pending', '{}', ?)", (tasks[-1][0], tasks[-1][5]))
    return tasks[n // 2][0]


def timed(port: int, path: str, runs: int) -> tuple[float, float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        conn.close()
        assert r.status == 200, (path, r.status)
        out.append((time.perf_counter() - t0) * 1000)
    return out[0], statistics.median(out)


def main() -> None:
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = parse_config_text(
            f"memory: {{database_path: {root / 'db.sqlite'}}}\nfile_system: {{workspace_path: {root / 'ws'}}}\n"
            "logging: {file: null}\nllm: {api_key: null}\n", base=root, env={})
        db = Database(settings.memory.database_path)
        t0 = time.perf_counter()
        middle = fill(db, args.tasks)
        print(f"filled {args.tasks:,} tasks, {2 * args.tasks:,} activity rows, {2 * args.tasks:,} LLM calls "
              f"in {time.perf_counter() - t0:.1f} s")
        server = DashboardServer(settings, "127.0.0.1:0")
        server.start()
        port = server.address[1]
        worst = 0.0
        try:
            for path in ("/", "/tasks", "/tasks?page=1000", "/tasks?status=failed", "/tasks?agent=qa&page=50",
                         "/tasks?q=slugify", f"/tasks?q={middle}", f"/tasks/{middle}", "/charts", "/approvals"):
                first, ms = timed(port, path, args.runs)
                worst = max(worst, ms)
                print(f"  {path:<28} median {ms:8.1f} ms   first {first:8.1f} ms")
        finally:
            server.stop()
        print(f"slowest page {worst:.1f} ms (target < {TARGET_MS:.0f} ms): {'MET' if worst < TARGET_MS else 'MISSED'}")


if __name__ == "__main__":
    main()
