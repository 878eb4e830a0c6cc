"""Structured answers the agents ask the model for. Every answer an agent acts on is one of these."""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
)

from ai_agents.domain import Role, TaskType


class Answer(BaseModel):
    # Models add stray keys; ignoring them is safer than failing a whole task on one.
    model_config = ConfigDict(extra="ignore")


class Validation(Answer):
    """The self-check of a result (specification: valid, score, issues)."""

    valid: bool
    score: float = Field(ge=0, le=10)
    issues: list[str] = Field(default_factory=list)


class ProposedTask(Answer):
    title: str = Field(min_length=3, max_length=200)
    description: str = Field(default="", max_length=4000)
    # Only work types: the CEO's own bookkeeping types are never the model's to create.
    type: Literal[TaskType.CODE, TaskType.ANALYSIS, TaskType.DECISION] = TaskType.ANALYSIS
    priority: Literal["high", "medium", "low"] = "medium"
    assigned_agents: list[Role] = Field(default_factory=list)
    deadline_hours: float | None = Field(default=None, gt=0)

    @field_validator("assigned_agents", mode="before")
    @classmethod
    def _known_roles(cls, value: object) -> object:
        # Drop roles we do not have instead of rejecting the whole plan.
        if isinstance(value, list):
            known = {r.value for r in Role}
            return [v for v in (str(x).lower().replace(" ", "_") for x in value) if v in known]
        return value


class TaskPlan(Answer):
    """The CEO's new work."""

    reasoning: str = ""
    tasks: list[ProposedTask] = Field(default_factory=list)
    goals_met: bool = False  # nothing useful left to do: generation pauses until company.* changes


class WorkProduct(Answer):
    """What an agent produces for an analysis task: a Markdown document and optional follow-ups."""

    summary: str = Field(min_length=1, max_length=2000)
    document: str = Field(min_length=1, max_length=100_000)
    follow_up_tasks: list[ProposedTask] = Field(default_factory=list, max_length=5)


class Criterion(Answer):
    name: str
    threshold: float | str | None = None
    weight: float = Field(default=1.0, ge=0)


class ApprovalCriteria(Answer):
    """Specification's determine_approval_criteria: chosen per task by each reviewer."""

    criteria: list[Criterion] = Field(min_length=1)
    reasoning: str = ""


class Verdict(Answer):
    approve: bool
    score: float = Field(ge=0, le=10)
    reasoning: str = ""
    concerns: list[str] = Field(default_factory=list)


class CEODecision(Answer):
    approve: bool
    reasoning: str = ""
    tasks: list[ProposedTask] = Field(default_factory=list)


class EscalationDecision(Answer):
    """What the CEO does with a task that could not be finished."""

    action: Literal["retry", "split", "drop"]
    reasoning: str = ""
    new_description: str | None = None
    subtasks: list[ProposedTask] = Field(default_factory=list)


# --- the test-first pipeline -------------------------------------------------------
CommitType = Literal["feat", "fix", "test", "docs", "refactor", "perf", "chore", "build", "ci", "style"]


class CommitMessage(Answer):
    """A Conventional Commits header and body; the trailers are added by the pipeline."""

    type: CommitType = "feat"
    scope: str | None = Field(default=None, max_length=30)
    subject: str = Field(min_length=3, max_length=100)
    body: str = Field(default="", max_length=3000)

    def render(self, trailers: dict[str, str]) -> str:
        scope = f"({self.scope.strip()})" if self.scope and self.scope.strip() else ""
        subject = " ".join(self.subject.split()).rstrip(".")
        head = f"{self.type}{scope}: {subject}"[:100]
        parts = [head]
        if self.body.strip():
            parts.append(self.body.strip())
        parts.append("\n".join(f"{k}: {v}" for k, v in trailers.items()))
        return "\n\n".join(parts) + "\n"


def _drop_invalid(value: Any, handler: ValidatorFunctionWrapHandler) -> CommitMessage | None:
    """A commit message that does not validate is left out (asked for separately), not the whole answer."""
    try:
        return cast("CommitMessage | None", handler(value))
    except ValidationError:
        return None


# A commit message given with the answer it describes saves a model call per commit.
FoldedMessage = Annotated[CommitMessage | None, WrapValidator(_drop_invalid)]


class TestSuite(Answer):
    """QA's tests, written before any code exists."""

    __test__ = False  # not a pytest class

    constraints: list[str] = Field(default_factory=list)
    requirements: list[str] = Field(default_factory=list)
    module_path: str = Field(description="the Python module the Developer must write, e.g. 'app/slug.py'")
    test_path: str = Field(description="the pytest file, under tests/, e.g. 'tests/test_slug.py'")
    test_code: str = Field(min_length=1, max_length=200_000)
    commit_message: FoldedMessage = Field(default=None, description=(
        "the commit message for these tests (type 'test'); without it the daemon asks for one separately"))


class SourceFile(Answer):
    path: str
    content: str = Field(max_length=1_000_000)


class DependencyRequest(Answer):
    """A third-party package the Developer's code needs (the daemon gates and installs it)."""

    name: str = Field(pattern=r"^(@[a-z0-9][a-z0-9._-]*/)?[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    version: str = Field("", pattern=r"^[A-Za-z0-9.*+!^~-]{0,40}$", description="exact version; empty: newest")
    ecosystem: Literal["python", "npm"] = "python"
    why: str = Field("", max_length=500)


class CodeChange(Answer):
    """The Developer's code for one attempt."""

    approach: str = ""
    files: list[SourceFile] = Field(min_length=1, max_length=20)
    dependencies: list[DependencyRequest] = Field(default_factory=list, max_length=10, description=(
        "third-party packages the code imports; the daemon installs them into the project's environment"))
    commit_message: FoldedMessage = Field(default=None, description=(
        "the commit message for this code (type feat or fix); without it the daemon asks for one separately"))


class Review(Answer):
    """The Tech Lead's verdict on code whose tests pass."""

    approve: bool
    score: float = Field(ge=0, le=10)
    reasons: list[str] = Field(default_factory=list)
    issues: list[str] = Field(default_factory=list)


