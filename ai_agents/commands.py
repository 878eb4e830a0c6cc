"""The CLI's commands. Each takes the parsed arguments and returns an exit code."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from ai_agents.cluster.nodes import NodeRegistry
from ai_agents.config import load_config
from ai_agents.config.models import Settings
from ai_agents.domain import CEO_WORK, TaskStatus, TaskType
from ai_agents.memory import MemoryStore, TaskStore
from ai_agents.memory.alerts import AlertStore, StoredAlert
from ai_agents.memory.approvals import decide_approval
from ai_agents.memory.backends import from_config as storage_from_config
from ai_agents.memory.storage import Storage

# Left out of ``tasks`` and ``status`` unless ``--all``: the CEO's bookkeeping, not the company's work.
CEO_INTERNAL: tuple[TaskType, ...] = tuple(sorted(CEO_WORK, key=lambda t: t.value))


def print_json(data: object) -> None:
    print(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def _stores(settings: Settings) -> tuple[Storage, MemoryStore, TaskStore]:
    db = storage_from_config(settings.memory)  # SQLite file, or the cluster's PostgreSQL (memory.database_url)
    return db, MemoryStore(db), TaskStore(db)


def cmd_check_config(args: argparse.Namespace) -> int:
    settings = load_config(args.config)
    roles = ", ".join(r.value for r in settings.agents.enabled_roles())
    print(f"{args.config}: ok (provider {settings.llm.provider}/{settings.llm.model}, roles: {roles})")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from ai_agents.app import run_daemon

    return run_daemon(args.config)


def cmd_demo(args: argparse.Namespace) -> int:
    from ai_agents.demo import run_demo

    return run_demo(args.workspace, args.scenario)


def cmd_doctor(args: argparse.Namespace) -> int:
    from ai_agents.app import run_doctor

    return run_doctor(args.config)


def cmd_submit(args: argparse.Namespace) -> int:
    settings = load_config(args.config)
    title, _, rest = args.text.strip().partition("\n\n")
    if not title.strip():
        print("ai-agents: the task text is empty", file=sys.stderr)
        return 2
    _, _, tasks = _stores(settings)
    task = tasks.create(args.type, title.strip(), (args.description or rest).strip(), priority=args.priority)
    print(f"queued task {task.id}: {task.title} ({task.type.value}, {args.priority})")
    return 0


def _task_row(t: Any) -> dict[str, Any]:
    return {"id": t.id, "status": t.status.value, "type": t.type.value, "priority": t.priority.name.lower(),
            "agent": t.assigned_agent, "attempts": t.attempts, "title": t.title, "parent_id": t.parent_id,
            "stage": t.payload.get("stage"), "error": t.error, "created_at": t.created_at,
            "updated_at": t.updated_at}


def cmd_tasks(args: argparse.Namespace) -> int:
    settings = load_config(args.config)
    _, _, tasks = _stores(settings)
    hidden = _hidden_types(args)
    rows = [_task_row(t) for t in tasks.list(args.status, limit=args.limit, offset=args.offset,
                                             exclude_types=hidden)]
    counts = tasks.busy_counts(exclude_types=hidden)
    total = counts.get(args.status, 0) if args.status else sum(counts.values())
    page = _page_note(args, len(rows), total)
    if args.json:
        print_json(rows)
        if page:
            print(page, file=sys.stderr)  # stdout stays one JSON list
        return 0
    internal = sum(tasks.counts().values()) - sum(counts.values()) if hidden else 0
    more = f"({internal} CEO-internal generation/escalation task(s) not shown: --all)" if internal else None
    if not rows:
        print("no tasks" + (f" with status {args.status}" if args.status else "")
              + (f" at offset {args.offset} (there are {total})" if args.offset and total else ""))
        if more:
            print(more)
        return 0
    for status in TaskStatus:
        group = [r for r in rows if r["status"] == status.value]
        if not group:
            continue
        print(f"{status.value} ({len(group)})")
        for r in group:
            stage = f" [{r['stage']}]" if r["stage"] else ""
            print(f"  {r['id']}  {r['priority']:<6} {r['type']:<8} {(r['agent'] or '-'):<10} {r['title']}{stage}")
            if r["error"] and status != TaskStatus.COMPLETED:
                print(f"      error: {r['error'][:160]}")
    if page:
        print(page)
    if more:
        print(more)
    return 0


def _hidden_types(args: argparse.Namespace) -> tuple[TaskType, ...]:
    """The CEO's own bookkeeping tasks (generation, escalation) are left out unless ``--all``."""
    return () if getattr(args, "all", False) else CEO_INTERNAL


def _page_note(args: argparse.Namespace, shown: int, total: int) -> str | None:
    """A line saying which slice of how many tasks is shown, when it is not all of them."""
    if shown == 0 or (args.offset == 0 and shown >= total):
        return None
    first, last = args.offset + 1, args.offset + shown
    more = f"; next page: --offset {last}" if last < total else ""
    return f"showing tasks {first}-{last} of {total} (oldest first, --limit {args.limit}){more}"


def _heartbeat_age(memory: MemoryStore) -> tuple[dict[str, Any] | None, float | None]:
    state, at = memory.get_state("heartbeat")
    if at is None:
        return None, None
    return state, (datetime.now(UTC) - at).total_seconds()


def loop_line(state: dict[str, Any] | None) -> str | None:
    """The main loop's last cycle, how long it took and how late it started (from the heartbeat)."""
    if not state or not state.get("loop_at"):
        return None
    ago = (datetime.now(UTC) - datetime.fromisoformat(state["loop_at"])).total_seconds()
    took, lag = state.get("loop_duration_ms"), state.get("loop_lag_seconds")
    return (f"last cycle {ago:.0f}s ago" + (f", took {took:.0f} ms" if took is not None else "")
            + (f", lag {lag:.1f}s" if lag is not None else ""))


def generation_line(state: dict[str, Any] | None) -> str | None:
    """When the idle CEO is asked for new work next (back-off), or that it said the goals are met."""
    gen = (state or {}).get("generation")
    if not gen:
        return None
    if gen.get("goals_met"):
        return "stopped: the CEO says the goals are met (until company.* changes)"
    if not gen.get("next_at"):
        return "at the next idle cycle"
    return f"next due {gen['next_at']} (after {gen.get('empty_cycles', 0)} empty cycle(s))"


def status_report(settings: Settings, config_path: str,
                  hidden: tuple[TaskType, ...] = CEO_INTERNAL) -> dict[str, Any]:
    """What ``status`` shows; task counts leave out ``hidden`` types (the CEO's own tasks by default)."""
    from ai_agents.config import LiveConfig
    from ai_agents.llm.usage import BudgetGuard
    from ai_agents.ops.metrics import collect_metrics

    db, memory, tasks = _stores(settings)
    state, age = _heartbeat_age(memory)
    usage = BudgetGuard(LiveConfig(settings), memory).status()  # today's spend, limits and what remains
    deployment, _ = memory.get_state("deployment")
    alerts = AlertStore(db)
    return {
        "config": str(config_path), "database": db.describe(),  # a PostgreSQL URL without its password
        "nodes": NodeRegistry.listing(db, settings.node.heartbeat_interval) if db.dialect == "postgres" else [],
        "workspace": str(settings.file_system.workspace_path), "log_file": str(settings.logging.file),
        "daemon": {"heartbeat_age_seconds": None if age is None else round(age, 1), **(state or {})},
        "paused": settings.paused,
        "tasks_by_status": tasks.busy_counts(exclude_types=hidden),
        "tasks_by_agent": tasks.counts_by_agent(exclude_types=hidden),
        "llm_today": {k: usage[k] for k in ("day", "calls", "tokens", "cost_usd", "per_agent")},
        "budget": {**usage["limits"], "remaining": usage["remaining"], "exhausted": usage["exhausted"]},
        "pending_approvals": len(tasks.approvals("pending")),
        "metrics": collect_metrics(db, memory, tasks),
        "last_deployment": (deployment or {}).get("history", [None])[-1] if isinstance(deployment, dict) else None,
        "dependencies_installed": _installed_dependencies(db),
        "alerts_24h": alerts.count_since(datetime.now(UTC) - timedelta(hours=24)),
        "latest_alert": _alert_row(latest[0]) if (latest := alerts.recent(1)) else None,
    }


def _alert_row(alert: StoredAlert) -> dict[str, Any]:
    return {"name": alert.name, "level": alert.level, "message": alert.message, "task_id": alert.task_id,
            "at": alert.timestamp}


def _package_hash(package: dict[str, Any], chars: int) -> str:
    """A package's hash as shown: ``sha256:...`` (Python) or npm's ``sha512-...`` integrity."""
    if package.get("integrity"):
        return str(package["integrity"])[:chars + 7]
    return f"sha256:{str(package.get('sha256'))[:chars]}"


def _installed_dependencies(db: Any, limit: int = 10) -> list[dict[str, Any]]:
    """The project's latest dependency installs (``dependency_installed`` activities): packages, versions, hashes."""
    rows = db.query("SELECT task_id, details, timestamp FROM activity_logs WHERE activity = 'dependency_installed' "
                    f"ORDER BY id DESC LIMIT {int(limit)}")
    out = []
    for row in rows:
        try:
            details = json.loads(row["details"] or "{}")
        except ValueError:
            continue
        out.append({"task_id": row["task_id"], "at": row["timestamp"], "packages": details.get("packages", [])})
    return out


def cmd_status(args: argparse.Namespace) -> int:
    settings = load_config(args.config)
    report = status_report(settings, str(args.config), _hidden_types(args))
    if args.json:
        print_json(report)
        return 0
    d = report["daemon"]
    age = d.get("heartbeat_age_seconds")
    alive = "never ran" if age is None else ("stopped" if d.get("stopped_at") else f"heartbeat {age:.0f}s ago")
    print(f"daemon:    {alive} (pid {d.get('pid', '-')}){'  PAUSED' if report['paused'] else ''}")
    print(f"config:    {report['config']}\ndatabase:  {report['database']}\nworkspace: {report['workspace']}")
    print(f"log file:  {report['log_file']}")
    for node in report["nodes"]:
        print(f"node:      {node['id']} on {node['host']} (pid {node['pid']}), heartbeat {node['heartbeat_at']}, "
              f"{'alive' if node['alive'] else 'NOT ALIVE'}")
    print("tasks:     " + (", ".join(f"{k} {v}" for k, v in sorted(report["tasks_by_status"].items())) or "none"))
    for agent, counts in sorted(report["tasks_by_agent"].items()):
        print(f"  {agent:<10} " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    queues = d.get("queues") or {}
    if queues:
        print("queues:    " + ", ".join(f"{k} {v}" for k, v in queues.items()))
    if d.get("current_tasks"):
        print("running:   " + ", ".join(f"{w}: {t}" for w, t in d["current_tasks"].items()))
    if d.get("unhealthy_roles"):
        print("UNHEALTHY: " + ", ".join(d["unhealthy_roles"]))
    if d.get("restart_required"):
        print("RESTART:   edited keys not applied until a restart: " + ", ".join(d["restart_required"]))
    if (loop := loop_line(d)) is not None:
        print(f"main loop: {loop}")
    if (gen := generation_line(d)) is not None:
        print(f"generate:  {gen}")
    u, b = report["llm_today"], report["budget"]
    print(f"LLM today: {u['calls']} calls, {u['tokens']} tokens, ${u['cost_usd']:.4f}")
    for agent, a in sorted(u["per_agent"].items()):
        print(f"  {agent:<10} {a['calls']} calls ({a['cached']} cached), {a['tokens']} tokens, ${a['cost_usd']:.4f}")
    print(f"budget:    daily ${b['daily_usd'] if b['daily_usd'] is not None else 'unlimited'}, "
          f"{b['daily_tokens'] if b['daily_tokens'] is not None else 'unlimited'} tokens; remaining "
          f"${b['remaining']['usd'] if b['remaining']['usd'] is not None else '-'}, "
          f"{b['remaining']['tokens'] if b['remaining']['tokens'] is not None else '-'} tokens")
    m = report["metrics"]
    print(f"metrics:   success rate {m.get('success_rate')}, errors {m.get('error_count')}")
    if report["pending_approvals"]:
        print(f"approvals: {report['pending_approvals']} pending (see 'approvals')")
    if (latest := report["latest_alert"]) is not None:
        print(f"alerts:    {report['alerts_24h']} in the last 24 h; latest {latest['name']} ({latest['level']}) "
              f"at {latest['at']:%Y-%m-%d %H:%M:%S}: {latest['message'][:120]}")
    for install in report["dependencies_installed"][:5]:
        print(f"installed: task {install['task_id']} at {install['at']}: " + ", ".join(
            f"{p.get('name')}=={p.get('version')} {_package_hash(p, 12)}" for p in install["packages"]))
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    from ai_agents.ops.health import check_health

    settings = load_config(args.config)
    if settings.memory.database_url is None and not settings.memory.database_path.exists():
        print(f"unhealthy: no database at {settings.memory.database_path}: the daemon has never run")
        return 1
    _, memory, _ = _stores(settings)
    report = check_health(memory)
    print(("healthy: " if report.ok else "unhealthy: ") + report.reason)
    if (loop := loop_line(memory.get_state("heartbeat")[0])) is not None:
        print(f"main loop: {loop}")
    return 0 if report.ok else 1


def _decide(args: argparse.Namespace, approved: bool) -> int:
    settings = load_config(args.config)
    _, memory, tasks = _stores(settings)
    row = decide_approval(tasks, memory, args.task_id, approved=approved, decided_by="cli")
    if row is None:
        print(f"ai-agents: task {args.task_id} has no pending approval (see 'approvals')", file=sys.stderr)
        return 1
    print(f"{row['status']} {row['action']} for task {args.task_id}; the daemon will continue it")
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    return _decide(args, True)


def cmd_reject(args: argparse.Namespace) -> int:
    return _decide(args, False)


def cmd_approvals(args: argparse.Namespace) -> int:
    settings = load_config(args.config)
    _, _, tasks = _stores(settings)
    rows = tasks.approvals(None if args.all else "pending")
    if not rows:
        print("no pending approvals" if not args.all else "no approvals")
    for r in rows:
        print(f"{r['task_id']}  {r['action']:<7} {r['status']:<9} requested {r['requested_at']}"
              + (f"  decided by {r['decided_by']}" if r["decided_by"] else ""))
        raw = r.get("details")
        details: dict[str, Any] = raw if isinstance(raw, dict) else {}
        raw_why = details.get("why")
        why: dict[str, Any] = raw_why if isinstance(raw_why, dict) else {}
        for p in details.get("packages") or [] if r["action"] == "dependency" else []:
            print(f"    package {p.get('name')}=={p.get('version')} {_package_hash(p, 16)}"
                  f"  why: {why.get(p.get('name')) or '; '.join(map(str, why.values())) or '-'}")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from ai_agents.dashboard import serve_dashboard

    return serve_dashboard(args.config, args.listen)
