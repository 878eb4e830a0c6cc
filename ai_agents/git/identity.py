"""Who an agent is in git: ``Developer Agent <developer@ai-agents.local>``."""

from __future__ import annotations

import re

from git import Actor

from ai_agents.domain import Role
from ai_agents.errors import GitOperationError

SYSTEM_AGENT = "system"


def _role_of(agent: Role | str) -> Role | None:
    if isinstance(agent, Role):
        return agent
    key = agent.strip().lower().replace(" ", "_").replace("-", "_").removesuffix("_agent")
    try:
        return Role(key)
    except ValueError:
        return None


def identity_for(agent: Role | str, domain: str) -> Actor:
    """The author and committer for ``agent``: a Role, its value or title, or another name ("system")."""
    role = _role_of(agent)
    if role is not None:
        return Actor(f"{role.title} Agent", f"{role.value}@{domain}")
    text = str(agent).strip()
    local = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-.")
    if not local:
        raise GitOperationError(f"agent name {agent!r} cannot be turned into a git identity")
    name = re.sub(r"\s+", " ", text.replace("_", " ")).title()
    return Actor(name if name.endswith(" Agent") else f"{name} Agent", f"{local}@{domain}")


def actor_env(author: Actor, committer: Actor | None = None) -> dict[str, str]:
    """Environment that makes git use exactly these identities, whatever the machine's config says."""
    committer = committer or author
    return {
        "GIT_AUTHOR_NAME": author.name or "",
        "GIT_AUTHOR_EMAIL": author.email or "",
        "GIT_COMMITTER_NAME": committer.name or "",
        "GIT_COMMITTER_EMAIL": committer.email or "",
    }


def role_of_email(email: str, domain: str) -> Role | None:
    """The Role whose identity (:func:`identity_for`) has this author email, or None."""
    return next((r for r in Role if (identity_for(r, domain).email or "").lower() == email.strip().lower()), None)
