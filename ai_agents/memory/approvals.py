"""A human's decision on a pending approval, as the CLI (`approve`/`reject`) and the dashboard make it."""

from __future__ import annotations

from typing import Any

from ai_agents.memory.store import MemoryStore
from ai_agents.memory.tasks import TaskStore


def decide_approval(tasks: TaskStore, memory: MemoryStore, task_id: str, *, approved: bool,
                    decided_by: str) -> dict[str, Any] | None:
    """Decide, then record who did it (an activity row); None when ``task_id`` has no pending approval."""
    row = tasks.decide_approval(task_id, approved=approved, decided_by=decided_by)
    if row is not None:
        memory.log_activity("human", "approval_" + row["status"], {"action": row["action"], "by": decided_by},
                            task_id=task_id)
    return row
