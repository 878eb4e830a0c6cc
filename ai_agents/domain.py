"""The domain: roles, task types, statuses and the Task record.

Imports no adapter. Everything else in the package speaks in these terms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any


class Role(str, Enum):
    """The agents of the company. The value is the key under ``agents:`` in config.yaml."""

    CEO = "ceo"
    CFO = "cfo"
    DEVELOPER = "developer"
    QA = "qa"
    RISK = "risk"
    LEGAL = "legal"
    SECURITY = "security"
    TECH_LEAD = "tech_lead"

    @property
    def title(self) -> str:  # type: ignore[override]  # a display name, not str.title()
        return {"ceo": "CEO", "cfo": "CFO", "qa": "QA", "tech_lead": "Tech Lead"}.get(
            self.value, self.value.capitalize()
        )


class TaskType(str, Enum):
    CODE = "code"
    ANALYSIS = "analysis"
    DECISION = "decision"
    # The CEO's own bookkeeping, queued by the main loop (which never calls a model itself).
    GENERATION = "generation"
    ESCALATION = "escalation"


CEO_WORK = frozenset({TaskType.GENERATION, TaskType.ESCALATION})


class TaskStatus(str, Enum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    ESCALATED = "escalated"
    AWAITING_APPROVAL = "awaiting_approval"


FINAL_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})


class Priority(int, Enum):
    """The specification's numbers: smaller runs first."""

    HIGH = 1
    MEDIUM = 5
    LOW = 10

    @classmethod
    def parse(cls, value: str | int | Priority) -> Priority:
        if isinstance(value, Priority):
            return value
        if isinstance(value, int):
            return min(cls, key=lambda p: abs(p.value - value))
        try:
            return cls[value.strip().upper()]
        except KeyError:
            raise ValueError(f"priority must be high, medium or low, not {value!r}") from None


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(dt: datetime | None) -> str | None:
    return dt.astimezone(UTC).isoformat(timespec="milliseconds") if dt else None


def parse_iso(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


_WORDS = re.compile(r"[a-z0-9]+")


def normalize_text(text: str) -> str:
    """Lower-case words only: what makes two task titles 'the same task'."""
    return " ".join(_WORDS.findall(text.lower()))


def slugify(text: str, max_len: int = 40) -> str:
    slug = "-".join(_WORDS.findall(text.lower()))[:max_len].strip("-")
    return slug or "task"


@dataclass
class Task:
    """One unit of work, as stored in the ``tasks`` table."""

    id: str
    type: TaskType
    title: str
    description: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
    priority: Priority = Priority.MEDIUM
    deadline: datetime | None = None
    status: TaskStatus = TaskStatus.QUEUED
    assigned_agent: str | None = None
    parent_id: str | None = None
    attempts: int = 0
    result: dict[str, Any] | None = None
    error: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    fingerprint: str = ""
    lease_token: int = 0  # counts the claims: the fencing token of the current attempt
    heartbeat_at: datetime | None = None

    def effective_priority(self, now: datetime | None = None) -> float:
        """Priority moved earlier as the deadline approaches (never past HIGH - 1)."""
        base = float(self.priority.value)
        if self.deadline is None:
            return base
        hours_left = ((self.deadline - (now or utcnow())).total_seconds()) / 3600
        if hours_left <= 0:
            return 0.0
        if hours_left < 24:
            # Linear pull towards 0 over the last day.
            return base * hours_left / 24
        return base


@dataclass(frozen=True)
class AttemptFailure:
    """Why one code attempt failed, as the Developer is told: a failing test (``what`` is its id) or one of
    the daemon's own checks (a conflict with main, tampering, a refused write, a dependency refused).
    ``brief``: how much of ``message`` the next attempt's one-line reasons carry (a conflict's hunks go
    whole, a test's failure in brief)."""

    what: str
    message: str = ""
    traceback: str = ""
    brief: int = 200

    def reason(self) -> str:
        return f"{self.what}: {self.message[:self.brief]}"


@dataclass(frozen=True)
class DecisionRecord:
    """One ``decision_history`` row, written in the same transaction as the change it decided."""

    agent_name: str
    decision_type: str
    data: dict[str, Any]
    task_id: str | None = None


@dataclass
class CheckResult:
    """One line of ``doctor``: what was checked, whether it is fine, and one sentence why."""

    name: str
    ok: bool
    detail: str
    data: dict[str, Any] = field(default_factory=dict)
