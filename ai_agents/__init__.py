"""ai-agents: an always-on autonomous AI agent daemon."""

__version__ = "0.1.0"
