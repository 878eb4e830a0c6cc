"""The agents: roles that think through the LLM layer and answer in pydantic models."""

from ai_agents.agents.base import BaseAgent, LanguageModel
from ai_agents.agents.ceo import CEOAgent
from ai_agents.agents.reviewer import ReviewerAgent

__all__ = ["BaseAgent", "CEOAgent", "LanguageModel", "ReviewerAgent"]
