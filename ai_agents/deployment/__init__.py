"""Deployment: ship a merged commit by CI/CD, over ssh (``direct``) or with docker; roll back; report status.

The manager never calls git: the caller merges (and pushes) first and passes the sha.
"""

from ai_agents.deployment.manager import DeploymentManager, build_strategy
from ai_agents.deployment.records import (
    DeploymentFailedError,
    DeploymentRecord,
    DeploymentStatus,
    StepRecord,
)
from ai_agents.deployment.runner import CommandResult, CommandRunner, minimal_env

__all__ = [
    "CommandResult",
    "CommandRunner",
    "DeploymentFailedError",
    "DeploymentManager",
    "DeploymentRecord",
    "DeploymentStatus",
    "StepRecord",
    "build_strategy",
    "minimal_env",
]
