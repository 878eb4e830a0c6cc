"""Restart recovery: from ``kill -9`` of a daemon with work in flight to the first task resumed.

Run: .venv/bin/python -m bench.restart_recovery [--runs 7]

Each run starts the real daemon (``python main.py run``) on the fake LLM server with two
code tasks, waits until a task is running and an LLM request is in flight, kills the
daemon and its children with SIGKILL, and starts it again at once. The figure is the time
from the kill to the restarted daemon's ``task_started`` event for a task its start-up
requeued (``tasks_recovered``), taken from the log's timestamps. It is split into start
(interpreter, imports, config, database, workspace recovery: to ``daemon_started``),
recovery (orphaned tasks requeued: to ``tasks_recovered``) and dispatch (workers started,
the task claimed: to its ``task_started``). Under systemd add ``RestartSec`` (10 s in the
shipped unit).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from tests.chaos.aim import kill_tree
from tests.chaos.observe import LogTail
from tests.chaos.scenario import chaos_config, chaos_script, helper_names, submit_code_tasks
from tests.conftest import base_config, deep_merge, wait_for
from tests.daemon import Daemon
from tests.fakes.llm_server import FakeLLMServer

PHASES = ("start", "recovery", "dispatch", "total")


def epoch(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()


def first(tail: LogTail, name: str, timeout: float = 60, **match: Any) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        return next((e for e in tail.named(name) if all(e.get(k) == v for k, v in match.items())), None)
    return wait_for(found, timeout=timeout, interval=0.002, message=f"log event {name}")


def one_run(tmp: Path, seed: int) -> dict[str, float]:
    names = helper_names(2, start=seed * 2 + 1)
    with FakeLLMServer(chaos_script(names)) as fake:
        fake.delay = 0.3  # a model that takes its time: a request is surely in flight at the kill
        config = tmp / "config.yaml"
        config.write_text(yaml.safe_dump(deep_merge(base_config(tmp, fake.openai_base_url), chaos_config())))
        submit_code_tasks(config, names)
        victim = Daemon(config).start()
        tail = LogTail(victim.stdout_path)
        first(tail, "task_started")
        seen = len(fake.requests)
        wait_for(lambda: len(fake.requests) > seen, timeout=30, interval=0.002, message="a request in flight")
        assert victim.proc is not None
        killed_at = time.time()
        kill_tree(victim.proc.pid)
        victim.wait(10)

        restarted = Daemon(config).start()
        try:
            tail = LogTail(restarted.stdout_path)
            started = first(tail, "daemon_started")
            recovered = first(tail, "tasks_recovered")
            requeued = set(recovered["requeued"])
            resumed = wait_for(lambda: next((e for e in tail.named("task_started") if e.get("task_id") in requeued),
                                            None), timeout=60, interval=0.002, message="a requeued task started")
        finally:
            restarted.signal(signal.SIGTERM)
            restarted.wait(30)
    phases = {"start": epoch(started) - killed_at, "recovery": epoch(recovered) - epoch(started),
              "dispatch": epoch(resumed) - epoch(recovered), "total": epoch(resumed) - killed_at}
    return {k: v * 1000 for k, v in phases.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    runs = []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="restart-recovery-") as tmp:
            run = one_run(Path(tmp), i)
        runs.append(run)
        print(f"run {i + 1}: " + "  ".join(f"{k} {run[k]:7.1f} ms" for k in PHASES), flush=True)
    med = {k: statistics.median(r[k] for r in runs) for k in PHASES}
    print(f"median of {args.runs}: kill -9 -> first requeued task started again {med['total']:.1f} ms "
          f"(process start {med['start']:.1f} ms, recovery {med['recovery']:.1f} ms, "
          f"dispatch {med['dispatch']:.1f} ms); min {min(r['total'] for r in runs):.1f} ms, "
          f"max {max(r['total'] for r in runs):.1f} ms; {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
