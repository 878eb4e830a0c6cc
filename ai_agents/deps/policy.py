"""The supply-chain gate: which packages the agents may use without asking (config.yaml ``dependencies``)."""

from __future__ import annotations

import fnmatch
import re
from enum import Enum

from ai_agents.config.models import Settings


class Verdict(str, Enum):
    ALLOW = "allow"
    DENY = "deny"
    APPROVAL = "approval"


def canonical(name: str) -> str:
    """PEP 503 form for Python names (``Foo_Bar`` -> ``foo-bar``); npm names are already lower case."""
    return name.lower() if name.startswith("@") else re.sub(r"[-_.]+", "-", name).lower()


def _matches(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(canonical(name), canonical(p)) for p in patterns)


def decide(settings: Settings, name: str) -> tuple[Verdict, str]:
    """(verdict, reason) for ``name`` under the live config: deny wins, then allow, then the approval gate."""
    deps = settings.dependencies
    if _matches(name, deps.deny):
        return Verdict.DENY, f"{name} is denied by dependencies.deny"
    if _matches(name, deps.allow):
        return Verdict.ALLOW, f"{name} is allowed by dependencies.allow"
    if "dependency" in settings.approvals.required_for:
        return Verdict.APPROVAL, f"{name} is not in dependencies.allow: a human must approve it"
    return Verdict.DENY, (f"{name} is not in dependencies.allow (and approvals.required_for has no 'dependency' "
                          "to ask a human)")
