"""Prices per model and the daily budget, both read from the live config on every call."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import structlog

from ai_agents.config.live import LiveConfig
from ai_agents.config.models import ModelPrice
from ai_agents.domain import utcnow
from ai_agents.errors import BudgetExceeded
from ai_agents.memory.store import MemoryStore

log = structlog.get_logger("ai_agents.llm")


def find_price(model: str, prices: Mapping[str, ModelPrice]) -> ModelPrice | None:
    """The entry whose key is the longest prefix of ``model`` ("gpt-4o-mini-2024-07-18" -> "gpt-4o-mini")."""
    best = max((k for k in prices if model.startswith(k)), key=len, default=None)
    return prices[best] if best is not None else None


class Pricer:
    """Cost of a call in USD; an unknown model costs 0 and is logged once per model."""

    def __init__(self) -> None:
        self._unknown_seen: set[str] = set()
        self._lock = threading.Lock()

    def cost(self, model: str, tokens_in: int, tokens_out: int, prices: Mapping[str, ModelPrice]) -> tuple[float, bool]:
        """(cost_usd, price_known)."""
        price = find_price(model, prices)
        if price is None:
            with self._lock:
                first = model not in self._unknown_seen
                self._unknown_seen.add(model)
            if first:
                log.warning("llm_price_unknown", model=model,
                            detail="no llm.prices key is a prefix of this model; its calls are recorded at $0")
            return 0.0, False
        return (tokens_in * price.input + tokens_out * price.output) / 1_000_000, True


def day_start(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


class BudgetGuard:
    """``budget.daily_usd`` / ``budget.daily_tokens`` against today's (UTC) ``llm_calls`` rows."""

    def __init__(self, live: LiveConfig, memory: MemoryStore, *, clock: Callable[[], datetime] = utcnow):
        self.live = live
        self.memory = memory
        self.clock = clock
        self._lock = threading.Lock()
        self._alerted_day: str | None = None  # the UTC day budget_exhausted was last alerted
        self._blocked = False

    def status(self) -> dict[str, Any]:
        """Today's totals and per agent, the limits, what remains, and whether calls are refused."""
        now = self.clock()
        budget = self.live.current.budget
        usage = self.memory.usage_since(day_start(now))
        remaining_usd = None if budget.daily_usd is None else max(0.0, round(budget.daily_usd - usage["cost_usd"], 6))
        remaining_tokens = None if budget.daily_tokens is None else max(0, budget.daily_tokens - usage["tokens"])
        return {
            "day": now.date().isoformat(),
            "calls": usage["calls"],
            "tokens": usage["tokens"],
            "cost_usd": usage["cost_usd"],
            "per_agent": usage["per_agent"],
            "limits": {"daily_usd": budget.daily_usd, "daily_tokens": budget.daily_tokens},
            "remaining": {"usd": remaining_usd, "tokens": remaining_tokens},
            "exhausted": remaining_usd == 0 or remaining_tokens == 0,
        }

    def check(self) -> None:
        """Raise :class:`BudgetExceeded` when today's totals reach either cap."""
        budget = self.live.current.budget
        if budget.daily_usd is None and budget.daily_tokens is None:
            self._mark_open(None)
            return
        status = self.status()
        used_up = []
        if budget.daily_usd is not None and status["cost_usd"] >= budget.daily_usd:
            used_up.append(f"${status['cost_usd']:.4f} of budget.daily_usd ${budget.daily_usd:g}")
        if budget.daily_tokens is not None and status["tokens"] >= budget.daily_tokens:
            used_up.append(f"{status['tokens']} of budget.daily_tokens {budget.daily_tokens}")
        if not used_up:
            self._mark_open(status)
            return
        with self._lock:
            self._blocked = True
            alert = self._alerted_day != status["day"]
            self._alerted_day = status["day"]
        if alert:
            log.error("budget_exhausted", day=status["day"], used=used_up, limits=status["limits"],
                      alert=True, alert_name="budget_exhausted",
                      detail="LLM calls are refused until the next UTC day or a raised budget")
        raise BudgetExceeded(f"daily LLM budget used up ({'; '.join(used_up)}): "
                             "calls resume at 00:00 UTC or when the budget is raised")

    def _mark_open(self, status: dict[str, Any] | None) -> None:
        with self._lock:
            was_blocked, self._blocked = self._blocked, False
        if was_blocked:
            log.info("budget_restored", day=self.clock().date().isoformat(),
                     tokens=status["tokens"] if status else None, cost_usd=status["cost_usd"] if status else None,
                     limits=status["limits"] if status else None)
