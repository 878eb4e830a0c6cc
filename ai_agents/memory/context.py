"""ContextManager: what each agent knows when it starts a task."""

from __future__ import annotations

from typing import Any

from ai_agents.config.live import LiveConfig
from ai_agents.domain import CEO_WORK, TaskStatus
from ai_agents.memory.store import MemoryStore
from ai_agents.memory.tasks import TaskStore


class ContextManager:
    """Per-agent context (its own memory) and the global context (company strategy, goals, history)."""

    def __init__(self, live: LiveConfig, memory: MemoryStore, tasks: TaskStore):
        self.live = live
        self.memory = memory
        self.tasks = tasks

    def global_context(self) -> dict[str, Any]:
        company = self.live.current.company
        return {
            "company": company.name,
            "mission": company.mission,
            "strategy": company.strategy,
            "goals": list(company.goals),
        }

    def agent_context(self, agent_name: str) -> dict[str, Any]:
        return {"memory": self.memory.memories(agent_name)}

    def history(self, limit: int = 20) -> dict[str, list[str]]:
        """Titles of what was done, what failed and what was decided lately."""
        def titles(status: TaskStatus) -> list[str]:
            # The CEO's own bookkeeping (generation, escalation decisions) is not company history.
            return [t.title for t in self.tasks.list(status) if t.type not in CEO_WORK][-limit:]

        decided = [f"{d['decision_type']}: {d['decision_data'].get('summary', '')}"[:200]
                   for d in self.memory.decisions(limit=limit)]
        return {
            "done": titles(TaskStatus.COMPLETED),
            "failed": titles(TaskStatus.FAILED) + titles(TaskStatus.ESCALATED),
            "in_flight": titles(TaskStatus.QUEUED) + titles(TaskStatus.IN_PROGRESS),
            "decided": decided,
        }

    def for_task(self, agent_name: str) -> dict[str, Any]:
        return {"global": self.global_context(), "agent": self.agent_context(agent_name)}
