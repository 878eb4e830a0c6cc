"""Several daemons on one PostgreSQL: node registration, singletons by advisory lock, wake-ups by NOTIFY."""

from ai_agents.cluster.nodes import NodeRegistry, resolve_node_id
from ai_agents.cluster.singletons import AdvisoryLocks, LocalSingletons, Singletons
from ai_agents.cluster.wakeup import TaskListener

__all__ = ["AdvisoryLocks", "LocalSingletons", "NodeRegistry", "Singletons", "TaskListener", "resolve_node_id"]
