"""Wall time of one full test-first cycle on the scripted model, split by where it goes.

Run: .venv/bin/python -m bench.tdd_cycle [--runs 3]

The real daemon (in-process) runs the demo's story: QA writes failing tests, the
Developer's first version fails, the fix passes, the Tech Lead reviews, commits
and a --no-ff merge land, a ci_cd deploy is recorded. Time is split into model
calls (the scripted model: ~zero), test runs (sandboxed pytest subprocesses), git
operations, and everything else (orchestration, SQLite, file writes, review
metrics). Target: everything else under 20% of the total.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from ai_agents.app import build_app
from ai_agents.config import load_config
from ai_agents.demo import write_demo_config
from ai_agents.domain import TaskStatus, TaskType
from ai_agents.logging_setup import Redactor


def timed(bucket: dict[str, float], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            bucket[name] += time.perf_counter() - t0
    return wrapper


def instrument(obj: Any, bucket: dict[str, float], name: str, methods: list[str]) -> None:
    for m in methods:
        setattr(obj, m, timed(bucket, name, getattr(obj, m)))


def one_cycle() -> dict[str, float]:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_config(write_demo_config(Path(tmp)))
        settings.orchestrator.check_interval = 0.2
        app = build_app(settings, None, Redactor(()), watch=False)
        spent: dict[str, float] = defaultdict(float)
        instrument(app.llm, spent, "model", ["generate_structured", "generate"])
        instrument(app.workspace.runner, spent, "tests", ["run_tests", "run_specific_test"])
        instrument(app.workspace.git, spent, "git", [
            "add", "commit", "checkout", "create_branch", "merge_branch", "diff", "log", "discard_changes",
            "branch_exists", "is_merged", "head_sha", "push"])
        t0 = time.perf_counter()
        app.start()
        while True:
            code = [t for t in app.tasks.list() if t.type == TaskType.CODE]
            if code and code[0].status == TaskStatus.COMPLETED:
                break
            if code and code[0].status in (TaskStatus.FAILED, TaskStatus.ESCALATED):
                raise SystemExit(f"the cycle did not finish: {code[0].error}")
            if time.perf_counter() - t0 > 120:
                raise SystemExit("timed out")
            time.sleep(0.005)
        # From the CEO's first call to the task's completion.
        total = time.perf_counter() - t0
        app.stop()
    spent["total"] = total
    spent["else"] = total - spent["model"] - spent["tests"] - spent["git"]
    return dict(spent)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    runs = [one_cycle() for _ in range(args.runs)]
    med = {k: statistics.median(r[k] for r in runs) for k in ("total", "model", "tests", "git", "else")}
    for k in ("model", "tests", "git", "else"):
        print(f"{k:<6} {med[k] * 1000:8.1f} ms  {100 * med[k] / med['total']:5.1f} %")
    print(f"total  {med['total'] * 1000:8.1f} ms  (median of {args.runs} cycles)")
    share = med["else"] / med["total"]
    print(f"everything else: {100 * share:.1f} % of the total; target < 20 %: {'MET' if share < 0.2 else 'MISSED'}")


if __name__ == "__main__":
    main()
