"""The code stage's use of the dependency gate: per task, what was installed and must be committed."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ai_agents.agents.coder import DeveloperAgent
from ai_agents.agents.models import CodeChange
from ai_agents.deps.gate import DependencyGate, GateResult
from ai_agents.domain import Task
from ai_agents.errors import AgentsError, WorkspaceError
from ai_agents.orchestrator.workspace import Workspace


class AwaitingDependency(AgentsError):
    """The change needs a package a human must approve first (the task waits in awaiting_approval)."""

    def __init__(self, details: dict[str, Any]):
        super().__init__(f"waiting for approval of {details.get('packages')}")
        self.details = details


class DependencySteps:
    def __init__(self, gate: DependencyGate | None, ws: Workspace, approval_status: Callable[[str, str], str | None],
                 developer: DeveloperAgent):
        self.gate = gate
        self.ws = ws
        self.approval_status = approval_status
        self.dev = developer
        self._lock = threading.Lock()
        self._ready: dict[str, GateResult] = {}

    def prepare(self, task: Task, change: CodeChange) -> list[dict[str, Any]] | None:
        """Failures for the Developer, or None when every dependency is installed (or none was asked for).

        Runs outside the workspace lock (an install takes a while). Raises AwaitingDependency.
        """
        with self._lock:
            self._ready.pop(task.id, None)
        if not change.dependencies:
            return None
        if self.gate is None:
            return [{"test_name": "dependencies", "error_message": "this daemon installs no dependencies"}]
        approved = task.payload.get("packages") if isinstance(task.payload.get("packages"), list) else []
        result = self.gate.prepare(task.id, change.dependencies, self.approval_status, approved)
        if result.awaiting is not None:
            self.dev.record("dependency_approval_requested", task, packages=result.awaiting["packages"])
            raise AwaitingDependency(result.awaiting)
        if result.failures:
            self.dev.record("dependency_refused", task, reasons=result.failures[:5])
            return [{"test_name": "dependencies", "error_message": f} for f in result.failures]
        self.dev.record("dependency_installed", task, packages=[
            {"name": p.name, "version": p.version, "sha256": p.sha256} for p in result.installed])
        with self._lock:
            self._ready[task.id] = result
        return None

    def write_files(self, task: Task) -> list[str]:
        """Write the manifest and lock file of what ``prepare`` installed for ``task`` (lock held by the caller)."""
        with self._lock:
            result = self._ready.get(task.id)
        if result is None:
            return []

        def read(path: str) -> str | None:
            try:
                return self.ws.fs.read_file(path) if self.ws.fs.exists(path) else None
            except WorkspaceError:
                return None

        written = []
        for path, text in result.files(read).items():
            self.ws.fs.write_file(path, text)
            written.append(path)
        return written
