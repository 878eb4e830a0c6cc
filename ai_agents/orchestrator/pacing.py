"""GenerationPacer: when the idle CEO may be asked for new work again.

A generation that accepts no new task doubles the wait before the next one (from
``check_interval`` up to ``max_generation_interval``); one that accepts a task, a
submitted task, a finished task or a change to ``company.*`` resets it. When the
CEO answers that the goals are met, generation stops until ``company.*`` changes.
The state lives in ``daemon_state`` ("generation"), so ``status`` shows it and a
restart keeps it.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import structlog

from ai_agents.config.live import LiveConfig
from ai_agents.domain import iso, parse_iso, utcnow
from ai_agents.memory.store import MemoryStore

log = structlog.get_logger("ai_agents.orchestrator")

STATE_KEY = "generation"


def company_fingerprint(company: Any) -> str:
    data = company.model_dump(mode="json") if hasattr(company, "model_dump") else company
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


class GenerationPacer:
    def __init__(self, live: LiveConfig, memory: MemoryStore, clock: Callable[[], datetime] = utcnow):
        self.live = live
        self.memory = memory
        self.clock = clock
        self._lock = threading.Lock()
        stored, _ = memory.get_state(STATE_KEY)
        stored = stored if isinstance(stored, dict) else {}
        self.interval = float(stored.get("interval") or 0.0)  # 0: no back-off
        self.next_at: datetime | None = parse_iso(stored.get("next_at"))
        self.goals_met = bool(stored.get("goals_met"))
        self.empty_cycles = int(stored.get("empty_cycles") or 0)
        self.company = stored.get("company") or company_fingerprint(live.current.company)
        if self.company != company_fingerprint(live.current.company):
            self.reset("company_changed")  # config.yaml edited while the daemon was stopped

    @property
    def base(self) -> float:
        return self.live.current.orchestrator.check_interval

    def due(self) -> bool:
        with self._lock:
            return not self.goals_met and (self.next_at is None or self.clock() >= self.next_at)

    def generated(self, accepted: int, goals_met: bool = False) -> None:
        """Record one generation's outcome and set when the next one is due."""
        cap = self.live.current.orchestrator.max_generation_interval
        with self._lock:
            now = self.clock()
            if accepted:
                self.interval, self.empty_cycles, self.next_at = 0.0, 0, None
            else:
                self.empty_cycles += 1
                self.interval = min(max(self.interval * 2, self.base * 2), cap)
                self.next_at = now + timedelta(seconds=self.interval)
            if goals_met and not accepted:
                self.goals_met = True
            self._save()
        if goals_met and not accepted:
            log.info("goals_met", detail="the CEO says the goals are met; no generation until company.* changes")
        elif not accepted:
            log.info("generation_backoff", empty_cycles=self.empty_cycles, next_in_seconds=self.interval,
                     next_at=iso(self.next_at))

    def reset(self, reason: str) -> None:
        """New work or a new strategy: generate at the next idle cycle (and forget goals_met on company.*)."""
        with self._lock:
            clear_goals = reason == "company_changed"
            if clear_goals:
                self.company = company_fingerprint(self.live.current.company)
            if not (self.interval or self.next_at or self.empty_cycles or (clear_goals and self.goals_met)):
                return  # nothing to reset: no write
            self.interval, self.empty_cycles, self.next_at = 0.0, 0, None
            if clear_goals:
                self.goals_met = False
            self._save()
        log.info("generation_reset", reason=reason)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"next_at": iso(self.next_at), "interval_seconds": self.interval, "goals_met": self.goals_met,
                    "empty_cycles": self.empty_cycles}

    def _save(self) -> None:
        self.memory.set_state(STATE_KEY, {"interval": self.interval, "next_at": iso(self.next_at),
                                          "goals_met": self.goals_met, "empty_cycles": self.empty_cycles,
                                          "company": self.company})
