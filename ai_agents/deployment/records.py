"""What a deployment did, what is live now, and where that is remembered.

The ledger (bounded history plus the stack of commits that were successfully
deployed) is stored as one value under the ``deployment`` key of the daemon
state, so ``status`` can show it and ``rollback`` knows the previous good commit
after a restart. Without a store it lives in memory only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from ai_agents.domain import utcnow
from ai_agents.errors import DeploymentError
from ai_agents.memory.store import MemoryStore

DeployType = Literal["ci_cd", "direct", "docker"]
Phase = Literal["prepare", "release", "check", "poll", "rollback", "rollback_check"]
RecordStatus = Literal["running", "succeeded", "failed"]
StatusState = Literal["never_deployed", "deployed", "failed", "rolled_back", "unknown"]

HISTORY_LIMIT = 50
STATE_KEY = "deployment"


class StepRecord(BaseModel):
    """One command (or one HTTP poll) of a deployment."""

    phase: Phase
    command: str
    target: str = Field(description="'local', 'ssh user@host:port' or 'http'")
    exit_code: int | None = Field(description="None when no process ran (an HTTP poll)")
    output_tail: str = ""
    timed_out: bool = False
    duration: float = 0.0


class DeploymentRecord(BaseModel):
    """One deploy or rollback, as shown by ``status`` and kept in the ledger."""

    id: str
    action: Literal["deploy", "rollback"]
    type: DeployType
    commit: str = Field(description="the commit deployed, or the rollback's target")
    previous_commit: str | None = Field(None, description="the live good commit when this started")
    status: RecordStatus = "running"
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    steps: list[StepRecord] = Field(default_factory=list)
    detail: str = ""
    error: str | None = None
    rolled_back_to: str | None = Field(None, description="set when a failed deploy was rolled back")
    task_id: str | None = None


class DeploymentStatus(BaseModel):
    """The answer of ``check_status``: what is live as far as the ledger knows."""

    state: StatusState
    current_commit: str | None = None
    previous_commit: str | None = None
    last: DeploymentRecord | None = None
    detail: str = ""


class DeploymentFailedError(DeploymentError):
    """A deploy or rollback failed; ``record`` says which step and what was rolled back."""

    def __init__(self, message: str, record: DeploymentRecord):
        super().__init__(message)
        self.record = record


class Ledger(BaseModel):
    """The stored value: recent records in ``history`` (oldest first) and the stack of good commits (live last)."""

    history: list[DeploymentRecord] = Field(default_factory=list)
    good_commits: list[str] = Field(default_factory=list)

    @property
    def current(self) -> str | None:
        return self.good_commits[-1] if self.good_commits else None

    @property
    def previous(self) -> str | None:
        return self.good_commits[-2] if len(self.good_commits) > 1 else None

    def put(self, record: DeploymentRecord) -> None:
        """Insert or replace ``record`` (by id), keeping the newest ``HISTORY_LIMIT``."""
        self.history = [r for r in self.history if r.id != record.id] + [record]
        self.history = self.history[-HISTORY_LIMIT:]

    def mark_good(self, commit: str) -> None:
        self.good_commits = [*self.good_commits, commit][-HISTORY_LIMIT:]

    def drop_current(self) -> None:
        """A rollback succeeded: the commit before the current one is live again."""
        self.good_commits = self.good_commits[:-1]

    def status(self) -> DeploymentStatus:
        last = self.history[-1] if self.history else None
        common = {"current_commit": self.current, "previous_commit": self.previous, "last": last}
        if last is None:
            return DeploymentStatus(state="never_deployed", detail="no deployment recorded", **common)
        if last.status == "running":
            return DeploymentStatus(
                state="unknown", **common,
                detail=f"{last.action} of {last.commit} started at {last.started_at.isoformat()} never finished "
                       "(the daemon stopped during it?): what is live is unknown")
        if last.status == "succeeded":
            state: StatusState = "deployed" if last.action == "deploy" else "rolled_back"
        elif last.rolled_back_to is not None:
            state = "rolled_back"
        else:
            state = "failed"
        detail = last.detail if last.error is None else f"{last.error}. {last.detail}".strip()
        return DeploymentStatus(state=state, detail=detail, **common)


class DeploymentHistory:
    """Loads and saves the :class:`Ledger` in the daemon state, or in memory without a store."""

    def __init__(self, store: MemoryStore | None):
        self.store = store
        self._memory = Ledger()

    def load(self) -> Ledger:
        if self.store is None:
            return self._memory.model_copy(deep=True)
        value, _updated = self.store.get_state(STATE_KEY)
        if value is None:
            return Ledger()
        try:
            return Ledger.model_validate(value)
        except ValidationError as e:
            raise DeploymentError(f"the stored deployment history (state key {STATE_KEY!r}) is unreadable: "
                                  f"{e.error_count()} problem(s), first: {e.errors()[0]['msg']}") from e

    def save(self, ledger: Ledger) -> None:
        if self.store is None:
            self._memory = ledger.model_copy(deep=True)
        else:
            self.store.set_state(STATE_KEY, ledger.model_dump(mode="json"))
