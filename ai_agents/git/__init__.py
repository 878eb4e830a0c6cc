"""git: the agents' repository — per-agent commits, secret scan, safe merges, remote sync."""

from ai_agents.git.doctor import check_git
from ai_agents.git.identity import identity_for
from ai_agents.git.manager import GitManager

__all__ = ["GitManager", "check_git", "identity_for"]
