"""MemoryStore: the specification's agent memory, activity log and decision history,
plus the daemon's own state (heartbeat), LLM usage rows, the response cache and approvals.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from ai_agents.domain import iso, utcnow
from ai_agents.memory.database import dumps, loads
from ai_agents.memory.storage import Storage


class MemoryStore:
    """Long-term memory and records of the daemon, over one :class:`Storage` (SQLite or PostgreSQL)."""

    def __init__(self, db: Storage, redact: Callable[[Any], Any] | None = None):
        self.db = db
        # Activity details and decisions can quote test output or model text: scrub secrets first.
        self._redact = redact or (lambda value: value)

    # --- agent_memory -----------------------------------------------------------
    def remember(self, agent_name: str, key: str, value: Any) -> None:
        """Insert or replace one value (the UNIQUE(agent_name, key) upsert)."""
        now = iso(utcnow())
        self.db.execute(
            "INSERT INTO agent_memory (agent_name, key, value, created_at, updated_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(agent_name, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (agent_name, key, dumps(value), now, now),
        )

    def recall(self, agent_name: str, key: str, default: Any = None) -> Any:
        row = self.db.query_one("SELECT value FROM agent_memory WHERE agent_name = ? AND key = ?", (agent_name, key))
        return default if row is None else loads(row["value"])

    def memories(self, agent_name: str) -> dict[str, Any]:
        rows = self.db.query("SELECT key, value FROM agent_memory WHERE agent_name = ? ORDER BY key", (agent_name,))
        return {r["key"]: loads(r["value"]) for r in rows}

    # --- activity_logs ------------------------------------------------------------
    def log_activity(self, agent_name: str, activity: str, details: dict[str, Any] | None = None,
                     task_id: str | None = None) -> None:
        self.db.execute(
            "INSERT INTO activity_logs (agent_name, activity, details, timestamp, task_id) VALUES (?, ?, ?, ?, ?)",
            (agent_name, activity, dumps(self._redact(details or {})), iso(utcnow()), task_id),
        )

    def activities(self, task_id: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        where, params = ("WHERE task_id = ?", (task_id,)) if task_id else ("", ())
        rows = self.db.query(f"SELECT * FROM activity_logs {where} ORDER BY id DESC LIMIT {int(limit)}", params)
        for r in rows:
            r["details"] = loads(r["details"])
        return rows[::-1]

    def prune_activity(self, older_than_days: float) -> int:
        cutoff = iso(utcnow() - timedelta(days=older_than_days))
        return self.db.execute("DELETE FROM activity_logs WHERE timestamp < ?", (cutoff,))

    # --- decision_history -------------------------------------------------------
    def record_decision(self, agent_name: str, decision_type: str, decision_data: dict[str, Any],
                        task_id: str | None = None) -> None:
        self.db.execute(
            "INSERT INTO decision_history (agent_name, decision_type, decision_data, timestamp, task_id) "
            "VALUES (?, ?, ?, ?, ?)",
            (agent_name, decision_type, dumps(self._redact(decision_data)), iso(utcnow()), task_id),
        )

    def decisions(self, task_id: str | None = None, decision_type: str | None = None,
                  limit: int = 100) -> list[dict[str, Any]]:
        clauses, params = [], []
        if task_id:
            clauses.append("task_id = ?")
            params.append(task_id)
        if decision_type:
            clauses.append("decision_type = ?")
            params.append(decision_type)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = self.db.query(f"SELECT * FROM decision_history {where} ORDER BY id DESC LIMIT {int(limit)}",
                             tuple(params))
        for r in rows:
            r["decision_data"] = loads(r["decision_data"])
        return rows[::-1]

    # --- daemon_state (heartbeat, worker health) ----------------------------------
    def set_state(self, key: str, value: Any) -> None:
        self.db.execute(
            "INSERT INTO daemon_state (key, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (key, dumps(value), iso(utcnow())),
        )

    def get_state(self, key: str) -> tuple[Any, datetime | None]:
        row = self.db.query_one("SELECT value, updated_at FROM daemon_state WHERE key = ?", (key,))
        if row is None:
            return None, None
        return loads(row["value"]), datetime.fromisoformat(row["updated_at"])

    # --- llm_calls ------------------------------------------------------------------
    def record_llm_call(self, *, agent: str | None, task_id: str | None, provider: str, model: str,
                        tokens_in: int = 0, tokens_out: int = 0, cost_usd: float = 0.0, price_known: bool = True,
                        latency_ms: float = 0.0, cached: bool = False, error: str | None = None) -> None:
        self.db.execute(
            "INSERT INTO llm_calls (timestamp, agent, task_id, provider, model, tokens_in, tokens_out, cost_usd, "
            "price_known, latency_ms, cached, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (iso(utcnow()), agent, task_id, provider, model, tokens_in, tokens_out, cost_usd,
             int(price_known), latency_ms, int(cached), error),
        )

    def usage_since(self, since: datetime) -> dict[str, Any]:
        """Tokens and cost since ``since``: totals and per agent (cache hits cost nothing)."""
        rows = self.db.query(
            "SELECT COALESCE(agent, '-') AS agent, COUNT(*) AS calls, SUM(cached) AS cached, "
            "SUM(CASE WHEN error IS NOT NULL THEN 1 ELSE 0 END) AS errors, "
            "SUM(tokens_in + tokens_out) AS tokens, SUM(cost_usd) AS cost_usd "
            "FROM llm_calls WHERE timestamp >= ? GROUP BY agent ORDER BY agent",
            (iso(since),),
        )
        per_agent = {r["agent"]: {k: (r[k] or 0) for k in ("calls", "cached", "errors", "tokens", "cost_usd")}
                     for r in rows}
        return {
            "calls": sum(a["calls"] for a in per_agent.values()),
            "tokens": sum(a["tokens"] for a in per_agent.values()),
            "cost_usd": round(sum(a["cost_usd"] for a in per_agent.values()), 6),
            "per_agent": per_agent,
        }

    def task_usage(self, task_id: str, agent: str | None = None) -> dict[str, float]:
        """Answered calls (``turns``), tokens and cost of one task, optionally of one agent's calls."""
        sql = ("SELECT COUNT(*) AS turns, COALESCE(SUM(tokens_in + tokens_out), 0) AS tokens, "
               "COALESCE(SUM(cost_usd), 0) AS cost_usd FROM llm_calls WHERE task_id = ? AND error IS NULL "
               "AND cached = 0")
        params: tuple[Any, ...] = (task_id,)
        if agent is not None:
            sql += " AND agent = ?"
            params += (agent,)
        row = self.db.query(sql, params)[0]
        return {"turns": row["turns"], "tokens": row["tokens"], "cost_usd": row["cost_usd"]}

    # --- llm_cache --------------------------------------------------------------
    def cache_get(self, key: str) -> Any:
        row = self.db.query_one("SELECT response, expires_at FROM llm_cache WHERE key = ?", (key,))
        if row is None or row["expires_at"] <= iso(utcnow()):
            return None
        self.db.execute("UPDATE llm_cache SET hits = hits + 1 WHERE key = ?", (key,))
        return loads(row["response"])

    def cache_put(self, key: str, response: Any, ttl_seconds: float) -> None:
        now = utcnow()
        self.db.execute(
            "INSERT INTO llm_cache (key, response, created_at, expires_at, hits) VALUES (?, ?, ?, ?, 0) "
            "ON CONFLICT(key) DO UPDATE SET response = excluded.response, created_at = excluded.created_at, "
            "expires_at = excluded.expires_at, hits = 0",
            (key, dumps(response), iso(now), iso(now + timedelta(seconds=ttl_seconds))),
        )

    def cache_prune(self) -> int:
        return self.db.execute("DELETE FROM llm_cache WHERE expires_at <= ?", (iso(utcnow()),))
