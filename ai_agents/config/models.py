"""Pydantic models for the whole of config.yaml.

Every section forbids unknown keys so a typo is an error that names the key,
never a silently ignored setting. Relative paths are resolved against the
directory of config.yaml by the loader (see ``loader.resolve_paths``).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from ai_agents.domain import Role


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


def _blank_secret_to_none(value: object) -> object:
    # "${OPENAI_API_KEY}" with the variable unset arrives as None or "": both mean "no key".
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return value


ProviderName = Literal["openai", "anthropic", "openai_compatible", "scripted"]
StructuredMode = Literal["auto", "json_schema", "tool", "json_object", "instruction"]


class ProviderConfig(Section):
    """One entry of the provider chain: ``llm`` itself and each ``llm.fallback`` item."""

    provider: ProviderName = "openai"
    model: str = "gpt-4o-mini"
    api_key: SecretStr | None = None
    base_url: str | None = None
    timeout: float = Field(60.0, gt=0, description="seconds per HTTP request")
    requests_per_minute: int = Field(60, gt=0)
    structured_mode: StructuredMode = "auto"
    script_path: Path | None = Field(None, description="answers file for provider 'scripted'")

    _blank_key = field_validator("api_key", mode="before")(_blank_secret_to_none)

    @model_validator(mode="after")
    def _scripted_needs_script(self) -> ProviderConfig:
        if self.provider == "scripted" and self.script_path is None:
            raise ValueError("provider 'scripted' needs script_path")
        return self


class ModelPrice(Section):
    """US dollars per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)


def default_prices() -> dict[str, ModelPrice]:
    table = {
        "gpt-4o": (2.50, 10.00),
        "gpt-4o-mini": (0.15, 0.60),
        "gpt-4.1": (2.00, 8.00),
        "gpt-4.1-mini": (0.40, 1.60),
        "gpt-4.1-nano": (0.10, 0.40),
        "gpt-4": (30.00, 60.00),
        "gpt-3.5-turbo": (0.50, 1.50),
        "o3": (2.00, 8.00),
        "o4-mini": (1.10, 4.40),
        "claude-opus-4": (15.00, 75.00),
        "claude-sonnet-4": (3.00, 15.00),
        "claude-3-7-sonnet": (3.00, 15.00),
        "claude-3-5-sonnet": (3.00, 15.00),
        "claude-3-5-haiku": (0.80, 4.00),
        "claude-haiku-4": (1.00, 5.00),
    }
    return {name: ModelPrice(input=i, output=o) for name, (i, o) in table.items()}


class CacheConfig(Section):
    enabled: bool = True
    ttl_seconds: int = Field(3600, ge=0)


class LLMConfig(ProviderConfig):
    temperature: float = Field(0.7, ge=0, le=2)
    max_tokens: int = Field(2000, gt=0)
    fallback: list[ProviderConfig] = Field(default_factory=list)
    max_retries: int = Field(4, ge=0, description="retries per provider before falling back")
    retry_max_wait: float = Field(120.0, gt=0, description="cap on any single backoff or Retry-After wait")
    cache: CacheConfig = Field(default_factory=CacheConfig)
    prices: dict[str, ModelPrice] = Field(default_factory=default_prices)


class GitConfig(Section):
    repository_url: str | None = None
    branch: str = "main"
    remote_name: str = "origin"
    auto_commit: bool = True
    auto_push: bool = False
    pull_strategy: Literal["ff", "rebase"] = "ff"
    # The merge queue brings an approved branch up to date with the main branch by rebasing it onto
    # main or by merging main into it; either way main then gets one tested --no-ff merge commit.
    integration: Literal["rebase", "merge"] = "merge"
    # Several daemons share the remote (repository_url): task branches are pushed as they are committed
    # and the merge queue integrates through the remote's main (fetch, test, --force-with-lease push).
    shared_remote: bool = False
    # Early conflict detection: before each Developer attempt, a branch whose base fell behind main by
    # changes to files the task touches is brought up to date (as integration says) and the attempt's
    # files merged onto main's; conflict hunks go to the Developer at once rather than at the queue.
    catch_up: bool = True
    # While the Tech Lead reviews a change whose tests passed, the merge queue runs the full suite on the merge
    # candidate it would build if the change is approved (in the order reviews are asked); when the candidate
    # it then builds has exactly that tree, the merge needs no test run of its own. Off: CPU only for merges.
    test_in_review: bool = True
    # A completed task's branch, once merged into main, is deleted here and (with shared_remote) on the
    # remote, the latter only while it still points at the merged commit (a lease); kept otherwise.
    delete_merged_branches: bool = True
    push_retries: int = Field(3, ge=0)
    identity_domain: str = "ai-agents.local"
    username: str | None = Field(None, description="user for an https remote; the token comes from the env")
    token: SecretStr | None = None

    _blank_token = field_validator("token", mode="before")(_blank_secret_to_none)


class FileSystemConfig(Section):
    workspace_path: Path = Path("data/workspace")
    git_repo_path: Path | None = Field(None, description="defaults to workspace_path")
    backup_dir: Path = Path("data/backups")
    backup_retention_days: float = Field(7, gt=0)
    max_file_bytes: int = Field(1_000_000, gt=0)
    protected_paths: list[str] = Field(
        default_factory=lambda: [".github/workflows/*", ".env", ".env.*", "config.yaml"]
    )
    # The clean slate: before every test run and after every step, everything in the workspace that git
    # does not track is removed, ignored files included; only these (paths relative to the workspace,
    # no globs) survive. The tests may read them but not change them; the Developer may not write them.
    keep_untracked: list[str] = Field(default_factory=lambda: [".venv", "venv", "node_modules"])
    max_workspace_mb: int = Field(1024, gt=0, description="disk use of the working tree (without .git) after a "
                                                          "test run; over it the task fails and the files go")
    max_workspace_files: int = Field(50_000, gt=0, description="files and directories, likewise")
    max_worktrees: int = Field(8, ge=1, description="task worktrees at once; at the cap new code tasks wait")
    max_worktrees_mb: int = Field(4096, ge=1, description="disk use of all worktrees; at the cap new code tasks wait")

    @field_validator("keep_untracked")
    @classmethod
    def _plain_relative_paths(cls, value: list[str]) -> list[str]:
        cleaned = []
        for entry in value:
            text = entry.strip().strip("/")
            parts = text.split("/")
            if (not text or entry.strip().startswith("/") or any(p in ("", ".", "..", ".git") for p in parts)
                    or any(c in text for c in "*?[]!\\")):
                raise ValueError(f"keep_untracked entry {entry!r} must be a plain path inside the workspace "
                                 "(no globs, no '..', not .git)")
            cleaned.append(text)
        return cleaned


class OrchestratorConfig(Section):
    check_interval: float = Field(60.0, gt=0, description="seconds between main-loop cycles")
    max_task_attempts: int = Field(3, ge=1)
    task_timeout: float = Field(3600.0, gt=0, description="seconds before an in-progress task is stuck")
    max_new_tasks: int = Field(5, ge=0, description="tasks the CEO may create per cycle")
    generate_when_idle: bool = True
    shutdown_grace: float = Field(30.0, gt=0, description="seconds in-flight tasks get on SIGTERM")
    heartbeat_interval: float = Field(5.0, gt=0, le=30, description="at most half of the unit's WatchdogSec=60")
    loop_threshold: int = Field(3, ge=2, description="same failure or same generated task this often = a loop")
    stall_timeout: float = Field(900.0, gt=0, description="seconds without a heartbeat before an attempt is ended; "
                                 "more than testing.timeout and one LLM call with its retries")
    max_generation_interval: float = Field(3600.0, gt=0, description="longest back-off between idle generations")
    # The in-daemon watchdog (ai_agents/ops/watchdog.py): no main-loop cycle for this long => a critical
    # alert with every thread's stack and exit 70, so Docker's or systemd's restart policy restarts it.
    watchdog_timeout: float = Field(300.0, ge=0, description="seconds without a main-loop cycle; 0 = off")

    @model_validator(mode="after")
    def _watchdog_after_cycles(self) -> OrchestratorConfig:
        if "watchdog_timeout" not in self.model_fields_set and 0 < self.watchdog_timeout < 2 * self.check_interval:
            # The default follows a long check_interval (3 cycles); only an explicit value is held to it.
            self.watchdog_timeout = 3 * self.check_interval
        elif 0 < self.watchdog_timeout < 2 * self.check_interval:
            raise ValueError(f"orchestrator.watchdog_timeout ({self.watchdog_timeout:g}) must be 0 (off) or at "
                             f"least twice check_interval ({self.check_interval:g}), or a healthy loop trips it")
        return self


class AgentConfig(Section):
    enabled: bool = True
    workers: int = Field(1, ge=1, le=32)
    model: str | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, gt=0)
    system_prompt: str | None = None


class ToolLimits(Section):
    """Caps on answered model calls, tokens (in + out) and dollars; null = no cap. Counted in llm_calls."""

    max_turns: int | None = Field(None, ge=1)
    max_tokens: int | None = Field(None, ge=1)
    max_usd: float | None = Field(None, gt=0)


class ToolsConfig(Section):
    """How QA and the Developer work on code: through tools in a bounded loop."""

    enabled: bool = Field(False, description="true in the shipped config.yaml; false: the former one-shot answers")
    per_stage: ToolLimits = Field(default_factory=lambda: ToolLimits(max_turns=60, max_tokens=1_500_000,
                                                                      max_usd=3.0))
    per_task: ToolLimits = Field(default_factory=lambda: ToolLimits(max_turns=150, max_tokens=4_000_000,
                                                                     max_usd=8.0))
    max_turns_per_attempt: int = Field(30, ge=2, description="model calls in one loop before it gives up")
    context_tokens: int = Field(24_000, ge=2000, description="the prompt of one turn never grows past this")
    map_tokens: int = Field(1500, ge=100, description="budget of the repository map in the first prompt")
    read_max_lines: int = Field(300, ge=20)
    search_max_results: int = Field(40, ge=5)


class AgentsConfig(Section):
    validation_threshold: float = Field(7.0, ge=0, le=10)
    max_fix_attempts: int = Field(3, ge=1)
    max_approaches: int = Field(2, ge=1)
    v_team: list[Role] = Field(default_factory=lambda: [Role.CFO, Role.RISK, Role.LEGAL, Role.TECH_LEAD])
    tools: ToolsConfig = Field(default_factory=ToolsConfig)
    ceo: AgentConfig = Field(default_factory=lambda: AgentConfig(temperature=0.8, max_tokens=3000))
    cfo: AgentConfig = Field(default_factory=lambda: AgentConfig(temperature=0.5, max_tokens=2500))
    developer: AgentConfig = Field(default_factory=AgentConfig)
    qa: AgentConfig = Field(default_factory=AgentConfig)
    risk: AgentConfig = Field(default_factory=AgentConfig)
    legal: AgentConfig = Field(default_factory=AgentConfig)
    security: AgentConfig = Field(default_factory=AgentConfig)
    tech_lead: AgentConfig = Field(default_factory=AgentConfig)

    def for_role(self, role: Role) -> AgentConfig:
        return getattr(self, role.value)

    def enabled_roles(self) -> list[Role]:
        return [r for r in Role if self.for_role(r).enabled]


class TestingConfig(Section):
    __test__ = False

    framework: Literal["auto", "pytest", "jest"] = "auto"
    auto_run: Literal[True] = Field(
        True, description="the specification's key; the test-first pipeline always runs the tests, so only true")
    timeout: float = Field(300.0, gt=0, description="seconds before the whole test process group is killed")
    sandbox: Literal["auto", "bwrap", "none"] = "auto"
    cpu_seconds: int = Field(300, gt=0)
    memory_mb: int = Field(2048, gt=0)
    max_processes: int = Field(256, gt=0)
    max_file_mb: int = Field(64, gt=0)
    tests_dir: str = "tests"


class DirectDeployConfig(Section):
    host: str = "localhost"
    port: int = Field(22, gt=0, lt=65536)
    user: str | None = None
    key_path: Path | None = None
    known_hosts: Path | None = None
    transport: Literal["ssh", "local"] = "ssh"
    deploy_commands: list[str] = Field(default_factory=lambda: ["git pull --ff-only"])
    rollback_commands: list[str] = Field(default_factory=list)
    check_command: str | None = None


class DockerDeployConfig(Section):
    image: str = "ai-agents-app"
    registry: str | None = None
    build_context: str = "."
    run_commands: list[str] = Field(default_factory=list, description="run after push, '{image}' is substituted")
    check_command: str | None = None


class CiCdDeployConfig(Section):
    status_command: str | None = None
    rollback_command: str | None = Field(None, description="run to roll back a ci_cd deploy; '{commit}' substituted")
    status_url: str | None = None
    poll_interval: float = Field(10.0, gt=0)
    poll_timeout: float = Field(600.0, gt=0)


class DeploymentConfig(Section):
    enabled: bool = True
    type: Literal["ci_cd", "direct", "docker"] = "ci_cd"
    ci_cd_provider: str = "github_actions"
    command_timeout: float = Field(600.0, gt=0)
    ci_cd: CiCdDeployConfig = Field(default_factory=CiCdDeployConfig)
    direct: DirectDeployConfig = Field(default_factory=DirectDeployConfig)
    docker: DockerDeployConfig = Field(default_factory=DockerDeployConfig)


class CompanyConfig(Section):
    name: str = "Example Co"
    mission: str = "Build small, well-tested Python utilities."
    strategy: str = "Ship one small tested feature at a time."
    goals: list[str] = Field(default_factory=lambda: ["A string utilities module with tests"])


class MemoryConfig(Section):
    database_path: Path = Path("data/ai_agents.db")
    activity_retention_days: float = Field(30, gt=0)
    # PostgreSQL shared by several daemons (postgresql://user:${AI_AGENTS_DB_PASSWORD}@host/db, or the password in
    # PGPASSWORD); unset: the SQLite file above. The data directory (database_path's folder) stays per node.
    database_url: SecretStr | None = Field(None, description="postgresql://...; unset: SQLite at database_path")
    pool_size: int = Field(8, ge=2, le=100, description="PostgreSQL connections per daemon (at most)")

    _blank_url = field_validator("database_url", mode="before")(_blank_secret_to_none)

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not v.get_secret_value().startswith(("postgresql://", "postgres://")):
            raise ValueError("memory.database_url must start with postgresql:// (or leave it unset for SQLite)")
        return v


class NodeConfig(Section):
    """This daemon in a cluster (several daemons on one PostgreSQL)."""

    id: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$",
                           description="stable node id; unset: generated once and kept in the data directory")
    heartbeat_interval: float = Field(5.0, gt=0, description="seconds between the node's heartbeat rows")


class LoggingConfig(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "console"] = "json"
    file: Path | None = Path("data/logs/ai-agents.log")
    max_bytes: int = Field(100 * 1024 * 1024, gt=0)
    backup_count: int = Field(7, ge=0)
    retention_days: float = Field(7, gt=0)

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, v: object) -> object:
        return v.upper() if isinstance(v, str) else v


class BudgetConfig(Section):
    daily_usd: float | None = Field(None, ge=0)
    daily_tokens: int | None = Field(None, ge=0)


GatedAction = Literal["deploy", "push", "merge", "dependency"]


class DependenciesConfig(Section):
    """The project's own third-party packages (live): what the agents may install, and from where."""

    allow: list[str] = Field(default_factory=list, description="names or fnmatch patterns installed without asking")
    deny: list[str] = Field(default_factory=list, description="names or patterns never installed (wins over allow)")
    python_index: str | None = Field(None, description="pip --index-url; None: PyPI. pip's own config is ignored")
    npm_registry: str | None = Field(None, description="npm --registry; None: npm's default registry")
    only_binary: bool = Field(True, description="wheels only: no sdist build scripts run on the daemon's machine")
    npm_scripts: bool = Field(False, description="run npm packages' install scripts (off: --ignore-scripts)")
    install_timeout: float = Field(300.0, gt=0, description="seconds before an install is killed")


class ApprovalsConfig(Section):
    required_for: list[GatedAction] = Field(default_factory=list)
    timeout_seconds: float = Field(86400.0, gt=0, description="an unanswered approval is rejected after this")


class MetricsConfig(Section):
    listen: str | None = Field(None, description="host:port for Prometheus text, e.g. 127.0.0.1:9464")


class DashboardConfig(Section):
    """The web dashboard (restart-only). Loopback by default; any other address needs ``token``."""

    listen: str | None = Field(None, description="host:port the daemon serves the dashboard on, e.g. 127.0.0.1:8080")
    token: SecretStr | None = Field(None, description="required beyond loopback; use ${DASHBOARD_TOKEN}")
    poll_seconds: float = Field(5.0, ge=1, le=300, description="how often open pages refresh themselves")

    _blank_token = field_validator("token", mode="before")(_blank_secret_to_none)

    @model_validator(mode="after")
    def _remote_needs_token(self) -> DashboardConfig:
        if self.listen is not None and self.token is None and not listen_is_loopback(self.listen):
            raise ValueError(f"dashboard.listen {self.listen!r} is not loopback: set dashboard.token "
                             "(e.g. token: ${DASHBOARD_TOKEN}) so every request is authenticated")
        if self.token is not None and len(self.token.get_secret_value()) < 16:
            raise ValueError("dashboard.token must be at least 16 characters")
        return self


def listen_is_loopback(listen: str) -> bool:
    """Is the host of 'host:port' ('[::1]:p', ':p', 'p' = 127.0.0.1) a loopback address?"""
    text = listen.strip()
    host = text[1:].partition("]")[0] if text.startswith("[") else (text.rpartition(":")[0] if ":" in text else "")
    if host in ("", "localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name we would have to resolve: treat as remote


class AlertsConfig(Section):
    webhook_url: str | None = None
    min_interval_seconds: float = Field(300.0, ge=0, description="same alert name at most once per interval")
    webhook_timeout: float = Field(5.0, gt=0)
    webhook_retries: int = Field(3, ge=0)


class Settings(Section):
    """The whole of config.yaml."""

    company: CompanyConfig = Field(default_factory=CompanyConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    git: GitConfig = Field(default_factory=GitConfig)
    file_system: FileSystemConfig = Field(default_factory=FileSystemConfig)
    orchestrator: OrchestratorConfig = Field(default_factory=OrchestratorConfig)
    agents: AgentsConfig = Field(default_factory=AgentsConfig)
    testing: TestingConfig = Field(default_factory=TestingConfig)
    deployment: DeploymentConfig = Field(default_factory=DeploymentConfig)
    memory: MemoryConfig = Field(default_factory=MemoryConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    approvals: ApprovalsConfig = Field(default_factory=ApprovalsConfig)
    dependencies: DependenciesConfig = Field(default_factory=DependenciesConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    dashboard: DashboardConfig = Field(default_factory=DashboardConfig)
    node: NodeConfig = Field(default_factory=NodeConfig)
    paused: bool = False

    @property
    def repo_path(self) -> Path:
        return self.file_system.git_repo_path or self.file_system.workspace_path

    def secret_values(self) -> list[str]:
        """Every configured secret, so logs and commits can be scrubbed of them."""
        secrets = [self.llm.api_key, self.git.token, self.dashboard.token, *(f.api_key for f in self.llm.fallback)]
        values = [s.get_secret_value() for s in secrets if s is not None and s.get_secret_value()]
        if self.memory.database_url is not None:  # the PostgreSQL password, when the URL carries one
            password = urlsplit(self.memory.database_url.get_secret_value()).password
            values += [password] if password else []
        return values


# Keys whose change takes effect without a restart. Everything else is read once at start.
LIVE_KEYS: tuple[str, ...] = (
    "paused",
    "company",
    "budget",
    "approvals",
    "dependencies",
    "alerts",
    "llm.temperature",
    "llm.max_tokens",
    "llm.cache",
    "llm.prices",
    "agents.validation_threshold",
    "agents.max_fix_attempts",
    "agents.max_approaches",
    "agents.v_team",
    "agents.tools",
    "agents.*.model",
    "agents.*.temperature",
    "agents.*.max_tokens",
    "agents.*.system_prompt",
    "orchestrator.check_interval",
    "orchestrator.max_task_attempts",
    "orchestrator.task_timeout",
    "orchestrator.max_new_tasks",
    "orchestrator.generate_when_idle",
    "orchestrator.loop_threshold",
    "orchestrator.stall_timeout",
    "orchestrator.max_generation_interval",
    "testing.timeout",
    "logging.level",
    "deployment",
    "git.integration",              # read by the merge queue at each candidate
    "git.delete_merged_branches",   # read when a task completes and at start
    "git.test_in_review",           # read at each Developer attempt
    "file_system.max_worktrees",    # read at each new worktree
    "file_system.max_worktrees_mb",
    "file_system.max_workspace_files",  # read after every test run (Workspace.check_limits)
    "file_system.max_workspace_mb",
)
