"""SQLite memory: the database, the specification's tables, tasks and context."""

from ai_agents.memory.context import ContextManager
from ai_agents.memory.database import Database
from ai_agents.memory.store import MemoryStore
from ai_agents.memory.tasks import TaskStore, fingerprint

__all__ = ["ContextManager", "Database", "MemoryStore", "TaskStore", "fingerprint"]
