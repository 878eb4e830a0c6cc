"""What the dashboard shows, read from the store and the workspace's git: read-only, paged, on indexes.

Every list is bounded (LIMIT) and ordered on an indexed column, so a page costs the
same with 100 tasks or 100,000. Nothing here writes: approving goes through
:func:`ai_agents.commands.decide_approval`, the code the CLI's ``approve`` runs.
"""

from __future__ import annotations

import re
import threading
import time as time_
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from ai_agents.config.live import LiveConfig
from ai_agents.config.models import Settings
from ai_agents.domain import CEO_WORK, TaskStatus, TaskType, parse_iso, utcnow
from ai_agents.errors import GitOperationError
from ai_agents.git.cmd import GitCmd
from ai_agents.llm.usage import BudgetGuard
from ai_agents.memory import MemoryStore, Storage, TaskStore
from ai_agents.memory.alerts import AlertStore
from ai_agents.memory.database import loads
from ai_agents.ops.health import HEARTBEAT_KEY, check_health

PAGE_SIZE = 50
MAX_DIFF_CHARS = 200_000
SHA = re.compile(r"[0-9a-f]{7,40}")
TASK_ID = re.compile(r"[A-Za-z0-9_\-]{1,64}")
LIST_COLUMNS = ("id, type, title, status, assigned_agent, attempts, priority, created_at, updated_at, "
                "finished_at, json_extract(payload, '$.stage') AS stage")
SORTS = {"created": "created_at", "updated": "updated_at"}
# Activities whose details name a commit: the timeline links them to their diff.
COMMIT_KEYS = ("commit", "tests_commit", "code_commit", "merge_commit")
CHARTS_TTL = 30.0
# The CEO's bookkeeping tasks: left out of the overview's counts and the default task list.
CEO_INTERNAL: tuple[TaskType, ...] = tuple(sorted(CEO_WORK, key=lambda t: t.value))
CEO_MARKS, CEO_VALUES = ",".join("?" * len(CEO_INTERNAL)), tuple(t.value for t in CEO_INTERNAL)
SHOW_CACHE_ENTRIES = 64


@dataclass
class TaskFilter:
    """The task list's search box and filters; every value is validated before it reaches SQL."""

    q: str = ""
    status: str = ""
    type: str = ""
    agent: str = ""
    page: int = 1
    all: bool = False  # also the CEO's own generation/escalation tasks (hidden unless asked for or a type filter)
    exact_id: bool = False  # q is the id of a task: a primary-key lookup instead of a title search

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if self.status:
            clauses.append("status = ?")
            params.append(self.status)
        if self.type:
            clauses.append("type = ?")
            params.append(self.type)
        elif not self.all and not self.exact_id:
            clauses.append(f"type NOT IN ({','.join('?' * len(CEO_INTERNAL))})")
            params += [t.value for t in CEO_INTERNAL]
        if self.agent:
            clauses.append("assigned_agent = ?")
            params.append(self.agent)
        if self.exact_id:
            clauses.append("id = ?")
            params.append(self.q)
        elif self.q:
            clauses.append("title LIKE ? ESCAPE '\\'")
            like = self.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            params.append(f"%{like}%")
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


@dataclass
class TaskPage:
    rows: list[dict[str, Any]]
    total: int
    page: int
    pages: int
    filter: TaskFilter
    agents: list[str] = field(default_factory=list)


@dataclass
class TimelineEntry:
    at: str
    kind: str  # activity | llm | decision | approval | task
    who: str
    what: str
    details: dict[str, Any]
    commits: list[str] = field(default_factory=list)


class DashboardData:
    """Read side of the dashboard over one :class:`Storage` (SQLite or PostgreSQL) and the workspace repository."""

    def __init__(self, settings: Settings, db: Storage):
        self.settings = settings
        self.db = db
        self.memory = MemoryStore(db)
        self.tasks = TaskStore(db)
        self.git = GitCmd(settings.repo_path, default_timeout=20)
        self._charts_lock = threading.Lock()
        self._show_lock = threading.Lock()
        self._shown: OrderedDict[tuple[str, bool], str] = OrderedDict()
        self._charts_cache: tuple[float, dict[str, Any] | None] = (0.0, None)

    # --- overview --------------------------------------------------------------------------
    def overview(self) -> dict[str, Any]:
        heartbeat, beat_at = self.memory.get_state(HEARTBEAT_KEY)
        heartbeat = heartbeat if isinstance(heartbeat, dict) else {}
        now = utcnow()
        age = (now - beat_at.replace(tzinfo=beat_at.tzinfo or UTC)).total_seconds() if beat_at else None
        loop_at = parse_iso(heartbeat.get("loop_at")) if isinstance(heartbeat.get("loop_at"), str) else None
        health = check_health(self.memory, now)
        budget = BudgetGuard(LiveConfig(self.settings), self.memory).status()
        # Other daemon state rows (e.g. restart-only config changes waiting for a restart), shown as recorded.
        # Only keys about a restart are shown from these rows.
        rows = self.db.query("SELECT key, value FROM daemon_state WHERE key NOT IN (?, ?) AND key LIKE '%restart%' "
                             "ORDER BY key LIMIT 50", (HEARTBEAT_KEY, "deployment"))
        extra_state = {r["key"]: loads(r["value"]) for r in rows}
        restart = {k: v for k, v in {**heartbeat, **extra_state}.items() if "restart" in k}
        return {
            "heartbeat": heartbeat, "heartbeat_age": age,
            "loop_age": (now - loop_at).total_seconds() if loop_at else None,
            "health": health, "budget": budget,
            "by_agent": self.counts_by_agent(), "by_status": self.tasks.busy_counts(exclude_types=CEO_INTERNAL),
            "restart_pending": restart,
            "pending_approvals": self.db.query_one("SELECT COUNT(*) AS n FROM approvals WHERE status = 'pending'")
            or {"n": 0},
            "alerts": self.recent_alerts(),
            "recent": self.db.query(f"SELECT {LIST_COLUMNS} FROM tasks WHERE type NOT IN ({CEO_MARKS}) "
                                    "ORDER BY updated_at DESC LIMIT 10", CEO_VALUES),
        }

    def counts_by_agent(self) -> dict[str, dict[str, int]]:
        """Like TaskStore.counts_by_agent, grouped on the plain columns so idx_tasks_agent covers it."""
        out: dict[str, dict[str, int]] = {}
        for r in self.db.query(f"SELECT assigned_agent, status, COUNT(*) AS n FROM tasks WHERE type NOT IN "
                               f"({CEO_MARKS}) GROUP BY assigned_agent, status", CEO_VALUES):
            out.setdefault(r["assigned_agent"] or "-", {})[r["status"]] = r["n"]
        return out

    def recent_alerts(self, limit: int = 10) -> list[dict[str, Any]]:
        """The newest alerts, from the ``alerts`` table (written as they are logged: AlertRecorder)."""
        return [{"timestamp": a.timestamp.isoformat() if a.timestamp else "", "level": a.level,
                 "alert_name": a.name, "message": a.message, "task_id": a.task_id}
                for a in AlertStore(self.db).recent(limit)]

    # --- tasks -----------------------------------------------------------------------------
    def task_page(self, flt: TaskFilter, page_size: int = PAGE_SIZE) -> TaskPage:
        flt.exact_id = bool(flt.q and TASK_ID.fullmatch(flt.q)
                            and self.db.query_one("SELECT 1 AS x FROM tasks WHERE id = ?", (flt.q,)))
        where, params = flt.where()
        total = int((self.db.query_one(f"SELECT COUNT(*) AS n FROM tasks {where}", tuple(params)) or {"n": 0})["n"])
        pages = max(1, -(-total // page_size))
        flt.page = min(max(1, flt.page), pages)
        rows = self.db.query(f"SELECT {LIST_COLUMNS} FROM tasks {where} ORDER BY created_at DESC "
                             f"LIMIT {int(page_size)} OFFSET {int((flt.page - 1) * page_size)}", tuple(params))
        if rows:
            ids = [r["id"] for r in rows]
            marks = ",".join("?" * len(ids))
            costs = {c["task_id"]: c for c in self.db.query(
                f"SELECT task_id, SUM(cost_usd) AS cost_usd, SUM(tokens_in + tokens_out) AS tokens "
                f"FROM llm_calls WHERE task_id IN ({marks}) GROUP BY task_id", tuple(ids))}
            for r in rows:
                c = costs.get(r["id"]) or {}
                r["cost_usd"], r["tokens"] = c.get("cost_usd") or 0.0, c.get("tokens") or 0
        agents = [r["a"] for r in self.db.query(
            "SELECT DISTINCT assigned_agent AS a FROM tasks WHERE assigned_agent IS NOT NULL ORDER BY a LIMIT 50")]
        return TaskPage(rows=rows, total=total, page=flt.page, pages=pages, filter=flt, agents=agents)

    def task(self, task_id: str) -> dict[str, Any] | None:
        if not TASK_ID.fullmatch(task_id):
            return None
        row = self.db.query_one("SELECT * FROM tasks WHERE id = ?", (task_id,))
        if row is None:
            return None
        row["payload"] = loads(row["payload"]) or {}
        row["result"] = loads(row["result"])
        cost = self.db.query_one("SELECT COUNT(*) AS calls, COALESCE(SUM(cost_usd), 0) AS cost_usd, "
                                 "COALESCE(SUM(tokens_in + tokens_out), 0) AS tokens FROM llm_calls WHERE task_id = ?",
                                 (task_id,)) or {}
        row["llm"] = cost
        row["approvals"] = self.db.query("SELECT * FROM approvals WHERE task_id = ? ORDER BY id", (task_id,))
        for a in row["approvals"]:
            a["details"] = loads(a["details"])
        return row

    def timeline(self, task: dict[str, Any], limit: int = 500) -> list[TimelineEntry]:
        """Every record of one task in time order: activities, LLM calls, decisions, approvals."""
        tid = task["id"]
        out = [TimelineEntry(task["created_at"], "task", "-", "created", {"title": task["title"]})]
        for a in self.db.query("SELECT * FROM activity_logs WHERE task_id = ? ORDER BY id LIMIT ?", (tid, limit)):
            details = loads(a["details"]) or {}
            commits = [str(details[k]) for k in COMMIT_KEYS if isinstance(details.get(k), str)
                       and SHA.fullmatch(str(details[k]))]
            out.append(TimelineEntry(a["timestamp"], "activity", a["agent_name"], a["activity"], details, commits))
        for c in self.db.query("SELECT * FROM llm_calls WHERE task_id = ? ORDER BY id LIMIT ?", (tid, limit)):
            out.append(TimelineEntry(c["timestamp"], "llm", c["agent"] or "-", "LLM call", {
                "model": f"{c['provider']}/{c['model']}", "tokens_in": c["tokens_in"], "tokens_out": c["tokens_out"],
                "cost_usd": round(c["cost_usd"], 6), "latency_ms": round(c["latency_ms"]),
                "cached": bool(c["cached"]), **({"error": c["error"]} if c["error"] else {})}))
        for d in self.db.query("SELECT * FROM decision_history WHERE task_id = ? ORDER BY id LIMIT ?", (tid, limit)):
            out.append(TimelineEntry(d["timestamp"], "decision", d["agent_name"], d["decision_type"],
                                     loads(d["decision_data"]) or {}))
        for a in task["approvals"]:
            out.append(TimelineEntry(a["requested_at"], "approval", "daemon", f"approval requested: {a['action']}",
                                     {"status": a["status"]}))
            if a["decided_at"]:
                out.append(TimelineEntry(a["decided_at"], "approval", a["decided_by"] or "-",
                                         f"{a['action']} {a['status']}", {}))
        if task.get("finished_at"):
            out.append(TimelineEntry(task["finished_at"], "task", "-", f"finished: {task['status']}", {}))
        return sorted(out, key=lambda e: e.at or "")

    def task_commits(self, task: dict[str, Any]) -> list[str]:
        """Commits of a task: its Task-Id trailer on any branch, plus the shas its records name."""
        shas: list[str] = []
        try:
            out = self.git.run("log", "--all", "--format=%H", "--max-count=50", "--fixed-strings",
                               f"--grep=Task-Id: {task['id']}", check=False)
            if out.ok:
                shas = [s for s in out.stdout.split() if SHA.fullmatch(s)]
        except GitOperationError:
            return []
        for source in (task.get("payload") or {}, task.get("result") or {}):
            for k in COMMIT_KEYS:
                v = source.get(k) if isinstance(source, dict) else None
                if isinstance(v, str) and SHA.fullmatch(v) and not any(s.startswith(v) for s in shas):
                    shas.append(v)
        return shas

    def show(self, sha: str, *, patch: bool = True) -> str:
        """``git show`` of one commit (stat and patch), cut at MAX_DIFF_CHARS; '' when unknown.

        A commit never changes, so answers for full shas are kept (a few dozen, LRU): a polled
        task page does not start git again for every refresh.
        """
        if not SHA.fullmatch(sha):
            return ""
        key = (sha, patch)
        with self._show_lock:
            if key in self._shown:
                self._shown.move_to_end(key)
                return self._shown[key]
        text = self._show(sha, patch)
        if len(sha) == 40 and text:
            with self._show_lock:
                self._shown[key] = text
                while len(self._shown) > SHOW_CACHE_ENTRIES:
                    self._shown.popitem(last=False)
        return text

    def _show(self, sha: str, patch: bool) -> str:
        args = ["show", "--no-ext-diff", "--no-textconv", "--no-color", "--stat"]
        args += ["--patch"] if patch else []
        try:
            res = self.git.run(*args, sha, "--", check=False)
        except GitOperationError:
            return ""
        text = res.stdout if res.ok else ""
        return text if len(text) <= MAX_DIFF_CHARS else text[:MAX_DIFF_CHARS] + "\n... (cut)\n"

    # --- approvals -------------------------------------------------------------------------
    def approvals(self, include_decided: int = 20) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        pending = self.db.query(
            "SELECT a.*, t.title, t.payload FROM approvals a JOIN tasks t ON t.id = a.task_id "
            "WHERE a.status = 'pending' ORDER BY a.id LIMIT 200")
        decided = self.db.query(
            "SELECT a.*, t.title FROM approvals a JOIN tasks t ON t.id = a.task_id "
            f"WHERE a.status != 'pending' ORDER BY a.decided_at DESC LIMIT {int(include_decided)}")
        for a in (*pending, *decided):
            a["details"] = loads(a["details"]) or {}
            a["payload"] = loads(a.get("payload")) or {}
        return pending, decided

    def deploy_target(self) -> str:
        d = self.settings.deployment
        if not d.enabled:
            return "deployment disabled"
        if d.type == "direct":
            where = "this machine" if d.direct.transport == "local" else f"{d.direct.host}:{d.direct.port}"
            return f"direct to {where}: {'; '.join(d.direct.deploy_commands)}"
        if d.type == "docker":
            return f"docker image {d.docker.image}" + (f" pushed to {d.docker.registry}" if d.docker.registry else "")
        return f"ci_cd ({d.ci_cd_provider})"

    # --- charts ----------------------------------------------------------------------------
    def charts(self, days: int = 14) -> dict[str, Any]:
        """Per-day figures, cached for CHARTS_TTL seconds: they scan days of rows and change slowly."""
        with self._charts_lock:
            at, cached = self._charts_cache
            if cached is None or time_.monotonic() - at > CHARTS_TTL:
                cached = self._charts(days)
                self._charts_cache = (time_.monotonic(), cached)
            return cached

    def _charts(self, days: int) -> dict[str, Any]:
        today = utcnow().date()
        first = today - timedelta(days=days - 1)
        since = datetime.combine(first, time(0), tzinfo=UTC).isoformat()
        day_keys = [(first + timedelta(days=i)).isoformat() for i in range(days)]
        # One pass over the covering index idx_llm_calls_day, summed per day and per agent here.
        usage: dict[str, dict[str, float]] = {}
        agents: dict[str, dict[str, float]] = {}
        for r in self.db.query(
                "SELECT substr(timestamp, 1, 10) AS day, COALESCE(agent, '-') AS agent, "
                "SUM(tokens_in + tokens_out) AS tokens, SUM(cost_usd) AS cost FROM llm_calls WHERE timestamp >= ? "
                "GROUP BY day, agent", (since,)):
            for bucket in (usage.setdefault(r["day"], {"tokens": 0, "cost": 0.0}),
                           agents.setdefault(r["agent"], {"tokens": 0, "cost": 0.0})):
                bucket["tokens"] += r["tokens"] or 0
                bucket["cost"] += r["cost"] or 0.0
        rows: list[dict[str, Any]] = [{"agent": a, **v} for a, v in agents.items()]
        per_agent = sorted(rows, key=lambda a: (-a["cost"], -a["tokens"]))[:20]
        finished = self.db.query(
            "SELECT substr(finished_at, 1, 10) AS day, status, COUNT(*) AS n FROM tasks "
            "WHERE finished_at >= ? GROUP BY day, status", (since,))
        done = {k: 0 for k in day_keys}
        failed = {k: 0 for k in day_keys}
        for r in finished:
            if r["status"] == TaskStatus.COMPLETED.value and r["day"] in done:
                done[r["day"]] += r["n"]
            elif r["status"] in (TaskStatus.FAILED.value, TaskStatus.ESCALATED.value) and r["day"] in failed:
                failed[r["day"]] += r["n"]
        durations = [r["s"] for r in self.db.query(
            "SELECT (julianday(finished_at) - julianday(created_at)) * 86400.0 AS s FROM tasks "
            "WHERE finished_at >= ? AND +status = ? LIMIT 20000", (since, TaskStatus.COMPLETED.value))
            if r["s"] is not None and r["s"] >= 0]
        return {
            "days": day_keys, "since": first,
            "tokens": [int((usage.get(d) or {}).get("tokens") or 0) for d in day_keys],
            "cost": [float((usage.get(d) or {}).get("cost") or 0.0) for d in day_keys],
            "per_agent": per_agent, "completed": [done[d] for d in day_keys], "failed": [failed[d] for d in day_keys],
            "durations": durations,
        }


def day_label(day: str) -> str:
    return date.fromisoformat(day).strftime("%d %b")
