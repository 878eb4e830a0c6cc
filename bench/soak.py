"""Soak: the real daemon under a steady stream of tasks, watched for growth.

Run from the repository root::

    .venv/bin/python -m bench.soak [--minutes 10] [--task-every 3] [--sample-every 5] [--warmup 1]

Starts ``python main.py run`` on a zero-latency scripted model (``llm.provider: scripted`` with a
script generated here: one module per code task, as the pipeline needs, plus generic answers),
submits tasks with ``python main.py submit`` (code and analysis in turn) and samples the daemon
every few seconds: RSS, open file descriptors (/proc/PID/fd), threads (/proc/PID/status), the
database with its WAL, the log file, tasks done and activity_logs rows. At the end it prints the
growth after the warm-up and checks the targets:

* RSS grows by less than ``--max-rss-growth-mb`` (10 MB) after the warm-up;
* file descriptors and threads stay flat (the median of the last samples no higher than that of
  the first samples after the warm-up, plus ``--tolerance``);
* activity_logs is pruned by ``memory.activity_retention_days`` (set to ``--retention-seconds``):
  rows were deleted and none is older than the retention plus one main-loop cycle;
* the daemon keeps up: it is alive and the queue does not grow without bound.

Exit status 0 when every target is met, 1 otherwise. The working directory is deleted at the end
unless ``--keep`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
MAIN = REPO / "main.py"


# --- the daemon's world ------------------------------------------------------------------------
def module_rules(n: int) -> list[dict[str, Any]]:
    """QA's tests and the Developer's code for soak task ``n``: a module of its own."""
    tag, mod = f"[soak-task-{n:05d}]", f"soakmod_{n:05d}"
    suite = {"module_path": f"{mod}.py", "test_path": f"tests/test_{mod}.py",
             "requirements": ["double(x) returns 2 * x"], "constraints": ["x is an int"],
             "test_code": f"from {mod} import double\n\n\ndef test_double():\n    assert double(21) == 42\n\n\n"
                          f"def test_zero():\n    assert double(0) == 0\n"}
    code = {"approach": "multiply", "files": [
        {"path": f"{mod}.py", "content": f'"""Soak module {n}."""\n\n\ndef double(x: int) -> int:\n'
                                         '    """Twice x."""\n    return 2 * x\n'}]}
    return [{"when": {"schema": "TestSuite", "contains": tag}, "reply": suite},
            {"when": {"schema": "CodeChange", "contains": tag}, "reply": code}]


GENERIC_RULES: list[dict[str, Any]] = [
    {"when": {"schema": "WorkProduct"}, "reply": {"summary": "A short note.", "document": "## Note\n\nAll good."}},
    {"when": {"schema": "Validation"}, "reply": {"valid": True, "score": 9, "issues": []}},
    {"when": {"schema": "Review"}, "reply": {"approve": True, "score": 9, "reasons": ["small and tested"]}},
    {"when": {"schema": "CommitMessage"}, "reply": {"type": "feat", "subject": "add a soak module",
                                                     "body": "Written by the soak run."}},
    {"when": {"schema": "EscalationDecision"}, "reply": {"action": "drop", "reasoning": "soak: no retries"}},
    {"when": {"schema": "TaskPlan"}, "reply": {"reasoning": "soak: nothing to add", "tasks": []}},
]


def write_world(root: Path, tasks: int, retention_seconds: float) -> Path:
    """The script and config.yaml of the soak daemon in ``root``; returns the config path."""
    rules = [r for n in range(tasks) for r in module_rules(n)] + GENERIC_RULES
    script = root / "script.json"
    script.write_text(json.dumps({"rules": rules}))
    config = {
        "company": {"name": "Soak Co", "mission": "Stay up.", "strategy": "Steady.", "goals": ["Many modules"]},
        # Zero latency and no rate limit (the default 60 requests a minute would be the bottleneck).
        "llm": {"provider": "scripted", "model": "soak-script", "script_path": str(script),
                "requests_per_minute": 100_000, "cache": {"enabled": False},
                "prices": {"soak-script": {"input": 0, "output": 0}}},
        "orchestrator": {"check_interval": 1, "heartbeat_interval": 1, "generate_when_idle": False,
                         "shutdown_grace": 10, "task_timeout": 600},
        "agents": {"max_fix_attempts": 1, "max_approaches": 1},
        "file_system": {"workspace_path": str(root / "data" / "workspace"),
                        "backup_dir": str(root / "data" / "backups")},
        "memory": {"database_path": str(root / "data" / "soak.db"),
                   "activity_retention_days": retention_seconds / 86400},
        "logging": {"file": str(root / "data" / "logs" / "soak.log"), "level": "INFO"},
        "testing": {"timeout": 120},
        "deployment": {"enabled": True, "type": "ci_cd"},
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


# --- measuring -----------------------------------------------------------------------------------
@dataclass
class Sample:
    t: float  # seconds since start
    rss_mb: float
    fds: int
    threads: int
    db_kb: int
    wal_kb: int
    log_kb: int
    done: int
    queued: int
    activity_rows: int


def _status_field(pid: int, name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    raise KeyError(name)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def db_query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    """A read-only query on the daemon's database (WAL: never blocks the daemon)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def sample(pid: int, t: float, db: Path, log: Path) -> Sample:
    counts = dict(db_query(db, "SELECT status, COUNT(*) FROM tasks GROUP BY status"))
    logs = [log, *log.parent.glob(log.name + ".*")]
    return Sample(
        t=round(t, 1), rss_mb=round(_status_field(pid, "VmRSS") / 1024, 1), fds=len(os.listdir(f"/proc/{pid}/fd")),
        threads=_status_field(pid, "Threads"), db_kb=_size(db) // 1024,
        wal_kb=_size(db.with_name(db.name + "-wal")) // 1024, log_kb=sum(_size(p) for p in logs) // 1024,
        done=counts.get("completed", 0) + counts.get("failed", 0), queued=counts.get("queued", 0),
        activity_rows=db_query(db, "SELECT COUNT(*) FROM activity_logs")[0][0])


def submit(config: Path, n: int) -> None:
    kind = "code" if n % 2 == 0 else "analysis"
    title = f"Soak {kind} task [soak-task-{n:05d}]"
    text = f"{title}\n\nAdd soakmod_{n:05d}.double(x)." if kind == "code" else f"{title}\n\nWrite a short note."
    subprocess.run([sys.executable, str(MAIN), "submit", text, "--type", kind, "--config", str(config)],
                   cwd=REPO, check=True, capture_output=True, timeout=60)


# --- verdict -------------------------------------------------------------------------------------
def window(samples: list[Sample], start: float, end: float) -> list[Sample]:
    return [s for s in samples if start <= s.t <= end]


def verdict(samples: list[Sample], args: argparse.Namespace, db: Path, alive: bool) -> list[tuple[str, bool, str]]:
    """(check, ok, figures) for every target."""
    warm_end = args.warmup * 60
    after = [s for s in samples if s.t >= warm_end]
    if len(after) < 4:
        return [("enough samples after the warm-up", False, f"{len(after)} samples; run longer")]
    head, tail = after[:3], after[-3:]
    rss_growth = statistics.mean(s.rss_mb for s in tail) - statistics.mean(s.rss_mb for s in head)
    # Medians: a git or pytest subprocess in flight adds a few pipes for one sample.
    fd_growth = statistics.median(s.fds for s in tail) - statistics.median(s.fds for s in head)
    thread_growth = statistics.median(s.threads for s in tail) - statistics.median(s.threads for s in head)
    minutes = (after[-1].t - after[0].t) / 60
    checks = [
        ("daemon alive", alive, ""),
        (f"RSS growth after warm-up < {args.max_rss_growth_mb:g} MB", rss_growth < args.max_rss_growth_mb,
         f"{rss_growth:+.1f} MB over {minutes:.1f} min (first {head[0].rss_mb} -> last {tail[-1].rss_mb} MB, "
         f"max {max(s.rss_mb for s in after)} MB)"),
        ("file descriptors flat", fd_growth <= args.tolerance,
         f"{fd_growth:+g} (range {min(s.fds for s in after)}..{max(s.fds for s in after)})"),
        ("threads flat", thread_growth <= args.tolerance,
         f"{thread_growth:+g} (range {min(s.threads for s in after)}..{max(s.threads for s in after)})"),
    ]
    oldest, max_id, rows = db_query(db, "SELECT MIN(timestamp), MAX(id), COUNT(*) FROM activity_logs")[0]
    age = (datetime.now(UTC) - datetime.fromisoformat(oldest)).total_seconds() if oldest else 0.0
    limit = args.retention_seconds + args.prune_slack
    pruned = (max_id or 0) - rows
    checks.append(("activity_logs pruned by retention", pruned > 0 and age <= limit,
                   f"{pruned} of {max_id} rows pruned; oldest kept {age:.0f}s old (retention "
                   f"{args.retention_seconds:g}s + {args.prune_slack:g}s)"))
    backlog = tail[-1].queued
    checks.append(("daemon keeps up with the stream", backlog <= args.max_backlog,
                   f"{tail[-1].done} tasks finished, {backlog} queued at the end"))
    return checks


# --- main ------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the stream runs")
    parser.add_argument("--warmup", type=float, default=1.0, help="minutes before growth is measured")
    parser.add_argument("--task-every", type=float, default=3.0, help="seconds between submitted tasks")
    parser.add_argument("--sample-every", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--retention-seconds", type=float, default=60.0,
                        help="memory.activity_retention_days of the soak daemon, in seconds")
    parser.add_argument("--prune-slack", type=float, default=15.0,
                        help="seconds an expired activity row may survive (main-loop cycle and sampling)")
    parser.add_argument("--max-rss-growth-mb", type=float, default=10.0)
    parser.add_argument("--tolerance", type=int, default=2, help="fds/threads above the warm-up level allowed")
    parser.add_argument("--max-backlog", type=int, default=10, help="queued tasks allowed at the end")
    parser.add_argument("--workdir", type=Path, default=None, help="where to run (default: a new temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    args = parser.parse_args(argv)

    root = args.workdir or Path(tempfile.mkdtemp(prefix="ai-agents-soak-"))
    root.mkdir(parents=True, exist_ok=True)
    total_tasks = int(args.minutes * 60 / args.task_every) + 10
    config = write_world(root, total_tasks, args.retention_seconds)
    db, log = root / "data" / "soak.db", root / "data" / "logs" / "soak.log"
    print(f"soak: {args.minutes:g} min, a task every {args.task_every:g}s (code and analysis in turn), "
          f"warm-up {args.warmup:g} min, activity retention {args.retention_seconds:g}s; working in {root}",
          flush=True)
    daemon = subprocess.Popen([sys.executable, str(MAIN), "run", "--config", str(config)], cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples: list[Sample] = []
    started = time.monotonic()
    try:
        deadline = time.monotonic() + 60
        while not db.exists() or not db_query(db, "SELECT name FROM sqlite_master WHERE name = 'tasks'"):
            if daemon.poll() is not None or time.monotonic() > deadline:
                print("soak: the daemon did not start", file=sys.stderr)
                return 1
            time.sleep(0.2)
        header = "  ".join(f"{k:>8}" for k in asdict(sample(daemon.pid, 0, db, log)))
        print(header, flush=True)
        next_task, next_sample, n = started, started, 0
        end = started + args.minutes * 60
        while time.monotonic() < end and daemon.poll() is None:
            now = time.monotonic()
            if now >= next_task:
                submit(config, n)
                n, next_task = n + 1, next_task + args.task_every
            if now >= next_sample:
                s = sample(daemon.pid, now - started, db, log)
                samples.append(s)
                print("  ".join(f"{v:>8}" for v in asdict(s).values()), flush=True)
                next_sample += args.sample_every
            time.sleep(max(0.0, min(next_task, next_sample) - time.monotonic()))
        alive = daemon.poll() is None
        checks = verdict(samples, args, db, alive)
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait(10)
    print(f"\nsubmitted {n} tasks; growth measured from {args.warmup:g} min to the end:")
    for name, ok, figures in checks:
        print(f"  {'ok  ' if ok else 'FAIL'} {name}: {figures}")
    if not args.keep and args.workdir is None:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
