"""Parallel code tasks: tasks per minute by worker count and model delay; attempt test time by repo size.

Run: .venv/bin/python -m bench.parallel_tasks [--tasks 8] [--delays 0.5 2] [--workers 1 2 4] [--sizes 10 300]

The real daemon (in process) and the real openai SDK against the fake server, whose every answer
takes ``delay`` seconds. Each code task goes QA -> Developer -> Tech Lead review -> merge queue
(full suite on the candidate) in its own worktree; ``agents.developer.workers`` and
``agents.qa.workers`` are both set to the worker count (``agents.tech_lead.workers``, the merge stage's,
is 4 in every run). Then one task in a repository that already
holds N helper modules with their tests: the attempt's test runs (QA's tests and those importing the
changed module) against the queue's full-suite run.

Last line, for scripts:
``parallel_tasks: speed-up 4 workers 2s = S.SS; attempt test time 300/10 modules = R.RR``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from ai_agents.app import build_app
from ai_agents.config import load_config
from ai_agents.domain import Role, TaskStatus
from ai_agents.logging_setup import Redactor, configure_logging
from tests.chaos.scenario import chaos_script, helper_code, helper_names, helper_test_code, module_name, task_title
from tests.conftest import base_config, deep_merge
from tests.fakes.llm_server import FakeLLMServer

TECH_LEAD_WORKERS = 4
FINAL = (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.ESCALATED, TaskStatus.CANCELLED)


def make_app(tmp: Path, fake: FakeLLMServer, workers: int) -> Any:
    data = deep_merge(base_config(tmp, fake.openai_base_url), {
        # The merge stage's workers stay the same in every run: with more than one, a branch waiting for the
        # queue is tested ahead on the candidate in front of it.
        "agents": {"developer": {"workers": workers}, "qa": {"workers": workers},
                   "tech_lead": {"workers": TECH_LEAD_WORKERS}},
        "orchestrator": {"task_timeout": 600, "stall_timeout": 600},
        "file_system": {"max_worktrees": max(8, workers * 2)},
        "logging": {"level": "INFO"}})
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    settings = load_config(path)
    redactor = Redactor(settings.secret_values())
    configure_logging(settings.logging, redactor)
    return build_app(settings, path, redactor, watch=False)


def wait_final(app: Any, ids: list[str], timeout: float) -> None:
    """Until every task is final, asked ten times a second with one count (no rows read): the bench shares
    the daemon's process, and reading all eight task rows 20 times a second cost it 1–2 CPU-seconds a run."""
    t0 = time.monotonic()
    marks, finals = ",".join("?" * len(ids)), ",".join("?" * len(FINAL))
    sql = f"SELECT COUNT(*) AS n FROM tasks WHERE id IN ({marks}) AND status IN ({finals})"
    params = (*ids, *(s.value for s in FINAL))
    while app.tasks.db.query_one(sql, params)["n"] < len(ids):
        if time.monotonic() - t0 > timeout:
            raise SystemExit("timed out")
        time.sleep(0.1)
    bad = [(t, app.tasks.get(t).error) for t in ids if app.tasks.get(t).status != TaskStatus.COMPLETED]
    if bad:
        raise SystemExit(f"tasks did not complete: {bad[:3]}")


def throughput(tasks: int, delay: float, workers: int) -> float:
    """Tasks per minute for ``tasks`` code tasks submitted at once."""
    names = helper_names(tasks)
    with tempfile.TemporaryDirectory() as tmp, FakeLLMServer(chaos_script(names), delay=delay) as fake:
        app = make_app(Path(tmp), fake, workers)
        app.start()
        try:
            t0 = time.monotonic()
            ids = [app.orchestrator.submit_task("code", task_title(n), f"{n} brief").id for n in names]
            wait_final(app, ids, timeout=60 + tasks * delay * 12 * 4)
            took = time.monotonic() - t0
        finally:
            app.stop()
    return tasks / took * 60


def attempt_test_time(size: int) -> tuple[float, float]:
    """(seconds of the attempt's test runs, seconds of the queue's full run) for one task in a repository
    already holding ``size`` helper modules, each with its own tests."""
    existing = helper_names(size, start=100)
    name = helper_names(1)[0]
    with tempfile.TemporaryDirectory() as tmp, FakeLLMServer(chaos_script([name])) as fake:
        app = make_app(Path(tmp), fake, 1)
        ws = app.workspace
        for n in existing:
            ws.fs.write_file(f"{module_name(n)}.py", helper_code(n))
            ws.fs.write_file(f"tests/test_{n}.py", helper_test_code(n))
        ws.git.commit("seed the repository", agent=Role.DEVELOPER)
        app.start()
        try:
            task = app.orchestrator.submit_task("code", task_title(name), f"{name} brief")
            wait_final(app, [task.id], timeout=600)
        finally:
            app.stop()
        events = [json.loads(line) for line in app.live.current.logging.file.read_text().splitlines()]
    attempts = sum(e["duration"] for e in events if e.get("event") == "tests_run" and e.get("agent") == "developer")
    queue = sum(e["seconds"] for e in events if e.get("event") == "merge_queue_tested")
    return attempts, queue


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", type=int, default=8)
    ap.add_argument("--delays", type=float, nargs="+", default=[0.5, 2.0])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 300])
    args = ap.parse_args()
    rates: dict[tuple[float, int], float] = {}
    for delay in args.delays:
        for workers in args.workers:
            rates[delay, workers] = throughput(args.tasks, delay, workers)
            base = rates[delay, args.workers[0]]
            print(f"delay {delay:.1f}s workers {workers}: {rates[delay, workers]:.2f} tasks/min, "
                  f"speed-up {rates[delay, workers] / base:.2f}", flush=True)
    times = {}
    for size in args.sizes:
        times[size] = attempt_test_time(size)
        print(f"{size} modules: attempt test runs {times[size][0]:.2f}s, queue full suite {times[size][1]:.2f}s",
              flush=True)
    top_delay, top_workers = args.delays[-1], args.workers[-1]
    speed = rates[top_delay, top_workers] / rates[top_delay, args.workers[0]]
    ratio = times[args.sizes[-1]][0] / times[args.sizes[0]][0]
    print(f"parallel_tasks: speed-up {top_workers} workers {top_delay:g}s = {speed:.2f}; "
          f"attempt test time {args.sizes[-1]}/{args.sizes[0]} modules = {ratio:.2f}")


if __name__ == "__main__":
    main()
