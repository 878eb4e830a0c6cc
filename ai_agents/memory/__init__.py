"""The store: SQLite (default) or PostgreSQL (several daemons) behind one contract, the tables, tasks, context."""

from ai_agents.memory.context import ContextManager
from ai_agents.memory.database import Database
from ai_agents.memory.storage import Storage
from ai_agents.memory.store import MemoryStore
from ai_agents.memory.tasks import TaskStore, fingerprint

__all__ = ["ContextManager", "Database", "MemoryStore", "Storage", "TaskStore", "fingerprint"]
