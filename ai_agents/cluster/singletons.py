"""Jobs that must run on one node at a time (task generation, escalations, approvals expiry,
retention): the contract the orchestrator asks, and the single-daemon answer.

With SQLite there is one daemon per database (the file lock), so every job is always this node's;
with PostgreSQL, :class:`ai_agents.cluster.advisory.AdvisoryLocks` answers.
"""

from __future__ import annotations

from typing import Protocol


class Singletons(Protocol):
    def held(self, name: str) -> bool: ...

    def close(self) -> None: ...


class LocalSingletons:
    """One daemon per store: every singleton is this one's."""

    def held(self, name: str) -> bool:
        return True

    def close(self) -> None:
        pass
