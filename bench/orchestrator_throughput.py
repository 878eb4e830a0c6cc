"""Orchestrator throughput: tasks per second and overhead per task hop; parallel speed-up across roles.

Run: .venv/bin/python -m bench.orchestrator_throughput [--tasks 300] [--latency 1.0] [--per-role 4]

Part 1 drives a zero-latency flow through the real orchestrator (queues, worker
threads, leases and every state change in SQLite): tasks/s, and the median time
one task hop costs (queue get, claim, activity rows, completion transaction).
Part 2 runs the real analysis flow (agents, self-check, documents committed to a
real git workspace through the merge queue, wired as the daemon wires it) with a
simulated model that takes --latency seconds per call, with 4 roles busy, and
compares the wall time with running the same tasks one after another.
Targets: overhead under 5 ms per hop; speed-up at least 3.5.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from ai_agents.agents import CEOAgent, ReviewerAgent
from ai_agents.agents.models import Validation, WorkProduct
from ai_agents.app import build_merge_queue, document_writer
from ai_agents.config import LiveConfig
from ai_agents.config.models import Settings
from ai_agents.deps.python_env import ENV_DIR
from ai_agents.domain import Role, Task, TaskStatus, TaskType
from ai_agents.file_system import FileSystemManager
from ai_agents.git import GitManager
from ai_agents.memory import ContextManager, Database, MemoryStore, TaskStore
from ai_agents.ops.alerts import Alerter
from ai_agents.ops.systemd import SystemdNotifier
from ai_agents.orchestrator import AnalysisFlow, FlowResult, TaskOrchestrator
from ai_agents.orchestrator.workspace import Workspace

M = TypeVar("M", bound=BaseModel)
ROLES = [Role.CFO, Role.RISK, Role.LEGAL, Role.TECH_LEAD]


class SimulatedModel:
    """An in-process model: waits ``latency`` seconds, then gives a valid answer."""

    def __init__(self, latency: float):
        self.latency = latency
        self.calls = 0
        self._lock = threading.Lock()

    def generate_structured(self, messages: Any, schema: type[M], **kwargs: Any) -> M:
        with self._lock:
            self.calls += 1
        if self.latency:
            time.sleep(self.latency)
        if schema is WorkProduct:
            return schema.model_validate({"summary": "done", "document": "# Result\n\nDone."})
        if schema is Validation:
            return schema.model_validate({"valid": True, "score": 9})
        raise ValueError(f"no simulated answer for {schema.__name__}")


class StampFlow:
    """A zero-work flow that notes when each task reached it."""

    def __init__(self) -> None:
        self.starts: list[float] = []

    def role_for(self, task: Task) -> Role:
        return Role.CFO

    def run(self, task: Task) -> FlowResult:
        self.starts.append(time.perf_counter())
        return FlowResult(result={"ok": True})


def settings_for(root: Path, workers: int = 1) -> Settings:
    s = Settings.model_validate({
        "orchestrator": {"check_interval": 60, "heartbeat_interval": 30, "generate_when_idle": False},
        "file_system": {"workspace_path": str(root / "ws"), "backup_dir": str(root / "backups")},
        "memory": {"database_path": str(root / "data" / "bench.db")}, "logging": {"file": None, "level": "WARNING"},
    })
    for role in ROLES:
        s.agents.for_role(role).workers = workers
    return s


def orchestrator(settings: Settings, flows: dict[TaskType, Any], model: Any) -> tuple[TaskOrchestrator, TaskStore]:
    live = LiveConfig(settings)
    db = Database(settings.memory.database_path)
    memory, tasks = MemoryStore(db), TaskStore(db)
    ceo = CEOAgent(model, ContextManager(live, memory, tasks), memory, live)
    orch = TaskOrchestrator(live=live, tasks=tasks, memory=memory, ceo=ceo, flows=flows, alerts=Alerter(live),
                            notifier=SystemdNotifier({}), budget_check=lambda: None, workspace_summary=lambda: "",
                            dispatch_interval=0.05)
    return orch, tasks


def wait_all(tasks: TaskStore, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while tasks.counts().get(TaskStatus.COMPLETED.value, 0) < n:
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out: {tasks.counts()}")
        time.sleep(0.01)


def part1(n: int) -> dict[str, float]:
    import structlog
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))  # no per-task log output
    with tempfile.TemporaryDirectory() as tmp:
        flow = StampFlow()
        orch, tasks = orchestrator(settings_for(Path(tmp)), {TaskType.ANALYSIS: flow}, SimulatedModel(0))
        for i in range(n):
            tasks.create("analysis", f"bench task {i}", assigned_agent="cfo")
        t0 = time.perf_counter()
        orch.start()
        wait_all(tasks, n, timeout=120)
        wall = time.perf_counter() - t0
        orch.shutdown()
    gaps = [b - a for a, b in zip(flow.starts, flow.starts[1:], strict=False)]
    return {"tasks": n, "wall_s": wall, "tasks_per_s": n / wall, "hop_median_ms": statistics.median(gaps) * 1000,
            "hop_p95_ms": sorted(gaps)[int(len(gaps) * 0.95)] * 1000}


def part2(latency: float, per_role: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = settings_for(Path(tmp))
        model = SimulatedModel(latency)
        live = LiveConfig(settings)
        fs = FileSystemManager.from_config(settings.file_system)
        git = GitManager.from_config(settings.git, settings.repo_path)
        git.ensure_repository()
        db = Database(settings.memory.database_path)
        memory, tasks = MemoryStore(db), TaskStore(db)
        ws = Workspace(live=live, fs=fs, git=git, runner=None, deployer=None, memory=memory)
        # Documents reach main as in the daemon: through the merge queue (git.auto_commit).
        data = settings.memory.database_path.parent
        queue = build_merge_queue(live, git=git, db=db, workspace=ws, fs=fs, hidden=[data], project_env=data / ENV_DIR)
        context = ContextManager(live, memory, tasks)
        agents = {role: ReviewerAgent(role, model, context, memory, live) for role in ROLES}
        flow = AnalysisFlow(agents, document_writer(settings, ws, queue))
        orch, tasks = orchestrator(settings, {TaskType.ANALYSIS: flow}, model)
        total = per_role * len(ROLES)
        for i in range(per_role):
            for role in ROLES:
                tasks.create("analysis", f"{role.value} study {i}", assigned_agent=role.value)
        t0 = time.perf_counter()
        orch.start()
        wait_all(tasks, total, timeout=total * latency * 4 + 60)
        wall = time.perf_counter() - t0
        orch.shutdown()
    calls_per_task = model.calls / total
    sequential = total * calls_per_task * latency
    return {"tasks": total, "model_calls_per_task": calls_per_task, "parallel_wall_s": wall,
            "sequential_model_time_s": sequential, "speedup": sequential / wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", type=int, default=300)
    ap.add_argument("--latency", type=float, default=1.0)
    ap.add_argument("--per-role", type=int, default=4)
    args = ap.parse_args()
    p1 = part1(args.tasks)
    print(f"zero-latency: {p1['tasks']} tasks in {p1['wall_s']:.2f} s = {p1['tasks_per_s']:.0f} tasks/s; "
          f"overhead per hop median {p1['hop_median_ms']:.2f} ms (p95 {p1['hop_p95_ms']:.2f} ms); target < 5 ms: "
          f"{'MET' if p1['hop_median_ms'] < 5 else 'MISSED'}")
    p2 = part2(args.latency, args.per_role)
    print(f"{args.latency:.1f} s model, 4 roles busy: {p2['tasks']} tasks ({p2['model_calls_per_task']:.0f} calls "
          f"each) in {p2['parallel_wall_s']:.2f} s vs {p2['sequential_model_time_s']:.1f} s one after another: "
          f"speed-up {p2['speedup']:.2f}; target >= 3.5: {'MET' if p2['speedup'] >= 3.5 else 'MISSED'}")


if __name__ == "__main__":
    main()
