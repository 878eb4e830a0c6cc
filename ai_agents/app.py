"""The composition root: the only module that imports every part and wires them together."""

from __future__ import annotations

import faulthandler
import fcntl
import logging
import os
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from ai_agents.agents import CEOAgent, ReviewerAgent
from ai_agents.agents.coder import DeveloperAgent, QAAgent
from ai_agents.cluster.nodes import NodeRegistry, resolve_node_id
from ai_agents.config import ConfigWatcher, LiveConfig, load_config
from ai_agents.config.models import Settings
from ai_agents.dashboard import DashboardServer
from ai_agents.deployment import DeploymentManager
from ai_agents.deps.gate import DependencyGate
from ai_agents.deps.python_env import ENV_DIR, ProjectPythonEnv
from ai_agents.domain import CheckResult, Role, TaskStatus, TaskType
from ai_agents.errors import ConfigError, FatalError
from ai_agents.file_system import FileSystemManager
from ai_agents.git import GitManager
from ai_agents.llm import LLMClient
from ai_agents.logging_setup import Redactor, configure_logging, set_level
from ai_agents.memory import ContextManager, MemoryStore, TaskStore
from ai_agents.memory.alerts import AlertStore
from ai_agents.memory.backends import from_config as storage_from_config
from ai_agents.memory.storage import Storage
from ai_agents.memory.tasks import TASKS_CHANNEL
from ai_agents.ops.alerts import Alerter, AlertLogHandler, AlertRecorder
from ai_agents.ops.health import check_health
from ai_agents.ops.metrics import MetricsServer, collect_metrics, render_openmetrics, render_prometheus
from ai_agents.ops.systemd import SystemdNotifier
from ai_agents.ops.watchdog import ALERT_NAME as WATCHDOG_ALERT
from ai_agents.ops.watchdog import LoopWatchdog
from ai_agents.orchestrator import AnalysisFlow, DecisionFlow, TaskOrchestrator
from ai_agents.orchestrator.branch_cleanup import MergedBranches
from ai_agents.orchestrator.flows import DocumentWriter, Flow
from ai_agents.orchestrator.merge_queue import MergeQueue
from ai_agents.orchestrator.pipeline import CodeFlow, Workspace
from ai_agents.orchestrator.workspace import paths_inside
from ai_agents.orchestrator.worktrees import QUEUE_DIR, Worktrees
from ai_agents.testing import TestRunner
from ai_agents.testing.sandbox import SandboxProbe
from ai_agents.testing.started import Warmer

if TYPE_CHECKING:
    from ai_agents.cluster.wakeup import TaskListener

log = structlog.get_logger("ai_agents.app")


@dataclass
class App:
    live: LiveConfig
    db: Storage
    memory: MemoryStore
    tasks: TaskStore
    llm: LLMClient
    workspace: Workspace
    orchestrator: TaskOrchestrator
    alerter: Alerter
    redactor: Redactor
    metrics_server: MetricsServer | None = None
    dashboard: DashboardServer | None = None
    alert_recorder: AlertRecorder | None = None  # stores alert=True log events while the daemon runs
    node: NodeRegistry | None = None  # PostgreSQL: this daemon's row in the cluster
    listener: TaskListener | None = None  # PostgreSQL: LISTEN for queued tasks
    merge_queue: MergeQueue | None = None  # its test processes started ahead end with the daemon
    warmer: Warmer | None = None  # the thread that starts them

    def start(self) -> None:
        if self.alert_recorder is not None:
            logging.getLogger().addHandler(self.alert_recorder)
        if self.node is not None:
            self.node.register()
        if self.listener is not None:
            self.listener.start()
        if self.metrics_server is not None:
            self.metrics_server.start()
        if self.dashboard is not None:
            self.dashboard.start()
        if self.merge_queue is not None:
            # Its worktrees, and one for each further merge-stage worker's runs ahead, before any branch comes.
            cfg = self.live.current
            ahead = cfg.agents.tech_lead.workers - 1 if cfg.git.integration == "merge" else 0
            self.merge_queue.prepare(ahead=ahead)
        self.orchestrator.start()

    def stop(self) -> None:
        self.orchestrator.shutdown()
        if self.warmer is not None:
            self.warmer.close()
        if self.merge_queue is not None:
            self.merge_queue.close()
        if self.listener is not None:
            self.listener.stop()
        self.orchestrator.singletons.close()  # the advisory locks go to the other nodes now
        if self.node is not None:
            self.node.stopped()
        if self.metrics_server is not None:
            self.metrics_server.stop()
        if self.dashboard is not None:
            self.dashboard.stop()
        self.alerter.close(2.0)
        if self.alert_recorder is not None:
            logging.getLogger().removeHandler(self.alert_recorder)
            self.alert_recorder.close(2.0)
        self.llm.close()
        self.db.close()


def build_app(settings: Settings, config_path: Path | None, redactor: Redactor, *,
              notifier: SystemdNotifier | None = None, watch: bool = True, metrics_remote: bool = False) -> App:
    live = LiveConfig(settings, config_path)
    live.subscribe(lambda old, new, keys: redactor.update(new.secret_values()))
    live.subscribe(lambda old, new, keys: set_level(new.logging.level) if "logging.level" in keys else None)
    db = storage_from_config(settings.memory)
    memory, tasks = MemoryStore(db, redactor.redact_value), TaskStore(db, redactor.redact_value)
    # Several daemons on one PostgreSQL: a node id, its row, advisory locks for the singletons, NOTIFY wake-ups.
    node = singletons = None
    if settings.memory.database_url is not None:
        url = settings.memory.database_url.get_secret_value()
        node_id = resolve_node_id(settings.node.id, settings.memory.database_path.parent)
        node = NodeRegistry(db, node_id, settings.node.heartbeat_interval)
        from ai_agents.cluster.advisory import AdvisoryLocks  # psycopg: only with a PostgreSQL store

        singletons = AdvisoryLocks(url, node_id)
    context = ContextManager(live, memory, tasks)
    alerter = Alerter(live, redactor=redactor)
    llm = LLMClient.from_config(live, memory)

    fs = FileSystemManager.from_config(settings.file_system)
    # Tests are untrusted code: hide the config directory (config.yaml, a .env beside it), the database,
    # the logs and the backups from them. Also when one of them holds the workspace, as in the shipped
    # layout (config.yaml above data/workspace): the sandbox binds the workspace back on top.
    hidden = [p for p in (config_path.parent if config_path else None, settings.memory.database_path.parent,
                          settings.logging.file.parent if settings.logging.file else None,
                          settings.file_system.backup_dir)
              if p is not None]
    # The clean slate removes everything git does not track; the daemon's own files that lie inside the
    # workspace (workspace_path "." beside config.yaml, the venv) are kept, as keep_untracked is.
    database = settings.memory.database_path
    own = paths_inside(settings.repo_path, [*hidden, config_path, config_path.parent / ".env" if config_path else None,
                                            database, *(database.with_name(database.name + s)
                                                        for s in ("-wal", "-shm", "-journal")), Path(sys.prefix)])
    keep = [*settings.file_system.keep_untracked, *own]
    git = GitManager.from_config(settings.git, settings.repo_path, settings.secret_values(), keep_untracked=keep)
    git.ensure_repository(settings.git.repository_url)
    if settings.git.shared_remote and not git.has_remote():
        raise ConfigError(f"git.shared_remote needs a remote: set git.repository_url (no remote named "
                          f"{settings.git.remote_name} in {settings.repo_path})")
    # The project's own packages: a virtualenv beside the database, outside the workspace (deps/python_env.py).
    project_env = settings.memory.database_path.parent / ENV_DIR
    probe = SandboxProbe()  # whether bubblewrap works here: probed once for every runner below
    warmer = Warmer()  # the one thread that starts test processes ahead for every runner below
    runner = TestRunner.from_config(settings.testing, settings.repo_path, hidden_paths=hidden, read_only_paths=keep,
                                    project_env=project_env, probe=probe, warmer=warmer)
    deployer = DeploymentManager.from_config(settings.deployment, settings.repo_path, memory,
                                             secrets=settings.secret_values())
    live.subscribe(lambda old, new, keys: deployer.reconfigure(new.deployment)
                   if any(k.startswith("deployment") for k in keys) else None)
    workspace = Workspace(live=live, fs=fs, git=git, runner=runner, deployer=deployer, memory=memory)
    workspace.recover()
    worktree_root = worktrees_dir(settings)

    def task_parts(path: Path) -> tuple[FileSystemManager, GitManager, TestRunner]:
        """A code task's own file-system manager, git manager and sandboxed runner, rooted at its worktree."""
        cfg = settings.file_system
        task_fs = FileSystemManager(path.resolve(), backup_dir=cfg.backup_dir, max_file_bytes=cfg.max_file_bytes,
                                    protected_paths=cfg.protected_paths,
                                    backup_retention_days=cfg.backup_retention_days)
        task_git = GitManager.from_config(settings.git, path, settings.secret_values(),
                                          keep_untracked=settings.file_system.keep_untracked)
        task_runner = TestRunner.from_config(settings.testing, path, hidden_paths=[*hidden, settings.repo_path],
                                             read_only_paths=settings.file_system.keep_untracked,
                                             project_env=project_env,
                                             shared_node_modules=settings.repo_path / "node_modules", probe=probe,
                                             warmer=warmer)
        return task_fs, task_git, task_runner

    worktrees = Worktrees(main=workspace, root=worktree_root, parts=task_parts,
                          cap=lambda: live.current.file_system.max_worktrees)
    worktrees.sweep(r["id"] for r in db.query("SELECT id FROM tasks WHERE type = ? AND status NOT IN (?, ?, ?)", (
        TaskType.CODE.value, TaskStatus.COMPLETED.value, TaskStatus.FAILED.value, TaskStatus.CANCELLED.value)))
    # Merged branches of completed tasks: deleted as each task completes; what is left over is swept now.
    branches = MergedBranches(git, live, completed=lambda ids: {
        i for i in ids if (t := tasks.get(i)) is not None and t.status == TaskStatus.COMPLETED})
    branches.sweep()
    merge_queue = build_merge_queue(live, git=git, db=db, workspace=workspace, fs=fs, hidden=hidden, probe=probe,
                                    project_env=project_env, warmer=warmer)

    agent_args = (llm, context, memory, live)
    ceo = CEOAgent(*agent_args)

    def spend_facts() -> dict[str, Any]:
        return {"llm_budget": llm.budget_status()}

    reviewers = {role: ReviewerAgent(role, *agent_args, facts=spend_facts if role == Role.CFO else None)
                 for role in (Role.CFO, Role.RISK, Role.LEGAL, Role.SECURITY, Role.TECH_LEAD)}
    enabled = set(settings.agents.enabled_roles())
    doers = {role: agent for role, agent in {Role.CEO: ceo, **reviewers}.items() if role in enabled}
    executor = ThreadPoolExecutor(max_workers=max(2, len(reviewers)), thread_name_prefix="vteam")
    flows: dict[TaskType, Flow] = {
        TaskType.ANALYSIS: AnalysisFlow(doers, document_writer(settings, workspace, merge_queue)),
        TaskType.DECISION: DecisionFlow(ceo, reviewers, lambda: live.current.agents.v_team, executor),
        TaskType.CODE: (code_flow := CodeFlow(workspace, qa=QAAgent(*agent_args),
                                              developer=DeveloperAgent(*agent_args),
                                              tech_lead=reviewers[Role.TECH_LEAD],
                                              approval_status=tasks.approval_status, merge_queue=merge_queue,
                                              worktrees=worktrees, branches=branches,
                                              deps=DependencyGate(live, lambda: ProjectPythonEnv.from_config(
                                                  live.current.dependencies, project_env),
                                                  node_modules=settings.repo_path / "node_modules"))),
    }
    orchestrator = TaskOrchestrator(
        live=live, tasks=tasks, memory=memory, ceo=ceo, flows=flows, alerts=alerter,
        notifier=notifier or SystemdNotifier({}), budget_check=llm.check_budget,
        workspace_summary=code_flow.tool_stages.overview, executor=executor,
        watcher=ConfigWatcher(live, config_path) if (watch and config_path) else None,
        # With NOTIFY waking the dispatcher, its polling is only the fallback: less load on the shared server.
        dispatch_interval=5.0 if node is not None else 1.0, node_id=node.node_id if node else None,
        singletons=singletons, on_heartbeat=(lambda state: node.beat({"queues": state.get("queues"),
                                                                      "running": state.get("current_tasks")}))
        if node is not None else None)
    listener = None
    if node is not None and settings.memory.database_url is not None:
        from ai_agents.cluster.wakeup import TaskListener

        listener = TaskListener(settings.memory.database_url.get_secret_value(), TASKS_CHANNEL, orchestrator.dispatch)
    alert_recorder = AlertRecorder(AlertStore(db), redactor)
    metrics_server = None
    if settings.metrics.listen:
        def figures() -> dict[str, Any]:
            return collect_metrics(db, memory, tasks, orchestrator.queue_depths(),
                                   alerts_not_stored=alert_recorder.not_stored(),
                                   alert_webhook=alerter.webhook_counts())
        metrics_server = MetricsServer(settings.metrics.listen, lambda: render_prometheus(figures()),
                                       render_openmetrics=lambda: render_openmetrics(figures()),
                                       health=lambda: check_health(memory), allow_remote=metrics_remote)
    # The dashboard (restart-only) gets its own Database: its request threads never share the daemon's connections.
    dashboard = DashboardServer(settings, redactor=redactor) if settings.dashboard.listen else None
    return App(live=live, db=db, memory=memory, tasks=tasks, llm=llm, workspace=workspace,
               orchestrator=orchestrator, alerter=alerter, redactor=redactor, metrics_server=metrics_server,
               dashboard=dashboard, alert_recorder=alert_recorder, node=node,
               listener=listener, merge_queue=merge_queue, warmer=warmer)


def worktrees_dir(settings: Settings) -> Path:
    """Where the task worktrees and the merge queue's live: beside the database, outside the workspace."""
    return settings.memory.database_path.parent / "worktrees"


def build_merge_queue(live: LiveConfig, *, git: GitManager, db: Storage, workspace: Workspace,
                      fs: FileSystemManager, hidden: list[Path], project_env: Path,
                      probe: SandboxProbe | None = None, warmer: Warmer | None = None) -> MergeQueue:
    """The merge queue: it builds and tests each candidate in its own worktree under the data directory;
    its test runs see neither the main working tree nor the daemon's files (``hidden``)."""
    settings = live.current
    queue_path = worktrees_dir(settings) / QUEUE_DIR
    return MergeQueue(
        git=git, db=db, path=queue_path, main_branch=settings.git.branch,
        runner=TestRunner.from_config(settings.testing, queue_path, hidden_paths=[*hidden, settings.repo_path],
                                      project_env=project_env, shared_node_modules=settings.repo_path / "node_modules",
                                      probe=probe, warmer=warmer),
        integration=lambda: live.current.git.integration, workspace_lock=workspace.lock,
        shared_remote=settings.git.shared_remote, fs=fs)


def document_writer(settings: Settings, workspace: Workspace, merge_queue: MergeQueue) -> DocumentWriter:
    """Where analysis documents go: onto main through the merge queue, like code (committed:
    ``git.auto_commit`` is restart-only), or, without commits, into the working tree."""
    return merge_queue.write_document if settings.git.auto_commit else workspace.write_document


class InstanceLock:
    """One daemon per database: a second ``run`` on the same data would double every task."""

    def __init__(self, db_path: Path):
        self.path = db_path.with_name(db_path.name + ".lock")
        self._fh: Any = None

    def __enter__(self) -> InstanceLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "w")
        try:
            fcntl.flock(self._fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            raise FatalError(f"another daemon is already running on {self.path.with_suffix('')}") from e
        return self

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._fh, fcntl.LOCK_UN)
        self._fh.close()


def run_daemon(config_path: Path) -> int:
    """``run``: start, serve until SIGTERM/SIGINT, stop within the grace period, exit 0."""
    settings = load_config(config_path)
    redactor = Redactor(settings.secret_values())
    configure_logging(settings.logging, redactor)
    faulthandler.enable()  # a watchdog abort prints every thread's stack to the journal
    # Exposing metrics beyond loopback is an explicit opt-in (the container sets it).
    metrics_remote = os.environ.get("AI_AGENTS_METRICS_ALLOW_REMOTE") == "1"
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()  # only a flag: the main thread does the work

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    notifier = SystemdNotifier()
    with InstanceLock(settings.memory.database_path):
        app = build_app(settings, config_path.resolve(), redactor, notifier=notifier, metrics_remote=metrics_remote)
        # Alerts logged anywhere (config_rejected, llm budget...) also reach the webhook.
        alert_handler = AlertLogHandler(app.alerter)
        logging.getLogger().addHandler(alert_handler)
        log.info("daemon_started", config=str(config_path), database=app.db.describe(),
                 node=app.node.node_id if app.node else None,
                 workspace=str(settings.file_system.workspace_path), provider=settings.llm.provider,
                 model=settings.llm.model)
        app.start()
        # Docker and nohup have no watchdog: a main loop stuck for orchestrator.watchdog_timeout ends the
        # process (exit 70) so the restart policy restarts it. Under systemd WATCHDOG=1 pings go on as well.
        watchdog = LoopWatchdog(
            lambda: app.orchestrator.loop_at, lambda: app.live.current.orchestrator.watchdog_timeout,
            alert=lambda message, fields: app.alerter.alert(WATCHDOG_ALERT, message, **fields),
            flush=lambda: app.alerter.close(2.0))
        watchdog.start()
        while not stop.wait(0.5):
            pass
        watchdog.stop()
        log.info("daemon_stopping", reason="signal")
        logging.getLogger().removeHandler(alert_handler)
        app.stop()
    log.info("daemon_stopped", exit_code=0)
    return 0


def run_doctor(config_path: Path) -> int:
    """``doctor``: config, the LLM chain, the workspace, git and the test framework."""
    from ai_agents.file_system.doctor import check_workspace
    from ai_agents.git.doctor import check_git
    from ai_agents.llm.doctor import check_llm_chain

    settings = load_config(config_path)
    print(f"config: ok ({config_path})")
    configure_logging(settings.logging.model_copy(update={"file": None, "level": "ERROR"}),
                      Redactor(settings.secret_values()))
    checks: list[CheckResult] = []
    try:
        db = storage_from_config(settings.memory)
        checks.append(CheckResult("database", True, f"{db.describe()} (schema {db.schema_version})"))
    except Exception as exc:  # unreachable server, bad credentials: the doctor reports it, redacted
        print(f"{'database':<9} FAIL {Redactor(settings.secret_values()).redact(str(exc))[:300]}")
        return 1
    llm = LLMClient.from_config(LiveConfig(settings, config_path), MemoryStore(db))
    checks += list(check_llm_chain(llm))
    fs = FileSystemManager.from_config(settings.file_system)
    checks.append(check_workspace(fs))
    git = GitManager.from_config(settings.git, settings.repo_path, settings.secret_values())
    checks += check_git(git, repository_url=settings.git.repository_url)
    checks.append(TestRunner.from_config(settings.testing, settings.repo_path).check())
    width = max(len(c.name) for c in checks) + 1
    for c in checks:
        print(f"{c.name:<{width}} {'ok  ' if c.ok else 'FAIL'} {c.detail}")
    llm_ok = any(c.ok for c in checks if c.name.startswith("llm"))
    others_ok = all(c.ok for c in checks if not c.name.startswith("llm"))
    return 0 if llm_ok and others_ok else 1
