"""The always-on loop: queues per role, worker threads, recovery and escalation."""

from ai_agents.orchestrator.flows import AnalysisFlow, DecisionFlow, Flow, FlowResult
from ai_agents.orchestrator.orchestrator import TaskOrchestrator

__all__ = ["AnalysisFlow", "DecisionFlow", "Flow", "FlowResult", "TaskOrchestrator"]
