"""One exception root for the whole daemon, grouped by what the caller should do.

Callers never inspect vendor exceptions: adapters wrap them (``raise ... from e``)
into one of the groups below, and :func:`action_for` maps a group to the one
action the orchestrator takes. Keep that mapping here, in one place.
"""

from __future__ import annotations

from enum import Enum


class AgentsError(Exception):
    """Root of every error the daemon raises on purpose."""


# --- transient: try again later -------------------------------------------------
class TransientError(AgentsError):
    """Something outside us hiccupped (network, rate limit, lock). Retry."""


class LLMUnavailableError(TransientError):
    """Every provider in the LLM chain failed with retryable errors."""


class GitRemoteError(TransientError):
    """The git remote could not be reached or refused a push."""


# --- the task failed: record it, maybe escalate -----------------------------------
class TaskFailedError(AgentsError):
    """The task cannot be completed as asked; the reason is in the message."""


class LLMOutputError(TaskFailedError):
    """The model's answer was not valid JSON or did not match the schema."""


class LLMRequestError(TaskFailedError):
    """The provider rejected the request itself (HTTP 400, unknown model...)."""


class WorkspaceError(TaskFailedError):
    """A file operation was refused (path escape, protected file, bad syntax...)."""


class ToolError(WorkspaceError):
    """A tool call of an agent's loop was refused; the message goes back to the model as the result."""


class AgentLimitReached(TaskFailedError):
    """A task or stage used up its turns, tokens or dollars (``agents.tools`` limits); the attempt fails."""


class AttemptTurnsUsed(AgentLimitReached):
    """One loop used ``agents.tools.max_turns_per_attempt`` without finishing: the attempt ends, the stage may go on."""


class GitOperationError(TaskFailedError):
    """A git operation failed; the repository was left as it was before."""


class MergeConflictError(GitOperationError):
    """A merge was aborted because of conflicts."""

    def __init__(self, message: str, conflicts: list[str], hunks: str = ""):
        super().__init__(message)
        self.conflicts = conflicts
        self.hunks = hunks  # the conflicted diff with its markers, when the caller collected it


class SecretDetectedError(GitOperationError):
    """A commit was refused because the staged change holds a secret."""


class TestRunError(TaskFailedError):
    """The test framework could not be run at all (not a failing test)."""

    __test__ = False  # not a pytest test class


class TestRunStopped(TestRunError):
    """The caller stopped the run before it ended: its verdict was no longer wanted (no verdict at all)."""

    __test__ = False


class DependencyError(TaskFailedError):
    """A project dependency could not be resolved or installed (the installer's last lines say why)."""


class DeploymentError(TaskFailedError):
    """A deployment step failed."""


# --- the attempt lost its lease: stop, touch nothing -----------------------------
class LeaseLost(AgentsError):
    """The task was reclaimed (timed out, stalled, released): this attempt may change nothing more."""


# --- budget: stop starting LLM work until the budget allows it -----------------
class CapacityWait(AgentsError):
    """No room for the work now (every task worktree in use): requeue it without counting an attempt."""


class MainBusy(CapacityWait):
    """The shared remote's main kept moving under every try (other nodes merging): the task did nothing
    wrong; it is requeued without counting an attempt and its merge is tried again."""


class BudgetExceeded(AgentsError):
    """The daily token or cost budget is used up."""


# --- fatal: a human must fix configuration; do not retry --------------------------
class FatalError(AgentsError):
    """Retrying cannot help: configuration or credentials must be fixed."""


class ConfigError(FatalError):
    """config.yaml is invalid. ``problems`` holds one line per problem."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = problems or [message]


class LLMAuthError(FatalError):
    """The provider rejected the API key (HTTP 401/403)."""


class ErrorAction(str, Enum):
    """What the orchestrator does with a failed unit of work."""

    RETRY = "retry"
    FAIL_TASK = "fail_task"
    WAIT_FOR_BUDGET = "wait_for_budget"
    WAIT_FOR_CAPACITY = "wait_for_capacity"
    FAIL_AND_ALERT = "fail_and_alert"


def action_for(exc: BaseException) -> ErrorAction:
    """Map an exception to the orchestrator's action. Unknown errors fail the task."""
    if isinstance(exc, TransientError):
        return ErrorAction.RETRY
    if isinstance(exc, BudgetExceeded):
        return ErrorAction.WAIT_FOR_BUDGET
    if isinstance(exc, CapacityWait):
        return ErrorAction.WAIT_FOR_CAPACITY
    if isinstance(exc, FatalError):
        return ErrorAction.FAIL_AND_ALERT
    return ErrorAction.FAIL_TASK
