"""The code stage's use of the dependency gate: per task, what was installed and must be committed.

Two callers: the pipeline's attempt (the Developer's ``dependencies``, either mode) and, with tools
on, the Developer's ``request_dependency`` tool, which installs an allowed package at once (its
tests see it in the next ``run_tests``). Both go through the same gate; a request already installed
for the task is not resolved or installed twice (deny is checked again, live).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ai_agents.agents.coder import DeveloperAgent
from ai_agents.agents.models import CodeChange, DependencyRequest
from ai_agents.deps.gate import DependencyGate, GateResult
from ai_agents.deps.policy import Verdict, canonical, decide
from ai_agents.domain import AttemptFailure, Task
from ai_agents.errors import AgentsError, ToolError, WorkspaceError
from ai_agents.orchestrator.workspace import Workspace

MAX_CACHED = 64


class AwaitingDependency(AgentsError):
    """The change needs a package a human must approve first (the task waits in awaiting_approval)."""

    def __init__(self, details: dict[str, Any]):
        super().__init__(f"waiting for approval of {details.get('packages')}")
        self.details = details


def _request_key(requests: list[DependencyRequest]) -> tuple[tuple[str, str, str], ...]:
    return tuple(sorted((r.ecosystem, canonical(r.name), r.version.lstrip("=")) for r in requests))


class DependencySteps:
    def __init__(self, gate: DependencyGate | None, ws: Workspace, approval_status: Callable[[str, str], str | None],
                 developer: DeveloperAgent):
        self.gate = gate
        self.ws = ws
        self.approval_status = approval_status
        self.dev = developer
        self._lock = threading.Lock()
        self._ready: dict[str, GateResult] = {}
        self._done: dict[str, tuple[tuple[tuple[str, str, str], ...], GateResult]] = {}

    def _read(self, path: str) -> str | None:
        try:
            return self.ws.fs.read_file(path) if self.ws.fs.exists(path) else None
        except WorkspaceError:
            return None

    def _gate(self, task: Task, requests: list[DependencyRequest]) -> GateResult:
        """The gate's answer for ``requests``, reusing this task's last install of the same set."""
        assert self.gate is not None
        key = _request_key(requests)
        with self._lock:
            cached = self._done.get(task.id)
        if cached and cached[0] == key:
            result = cached[1]
            settings = self.gate.live.current
            if all(decide(settings, p["name"])[0] != Verdict.DENY for p in result.packages()):
                return result
        approved = task.payload.get("packages") if isinstance(task.payload.get("packages"), list) else []
        result = self.gate.prepare(task.id, requests, self.approval_status, approved, read=self._read)
        if result.awaiting is None and not result.failures:
            self.dev.record("dependency_installed", task, packages=result.packages())
            with self._lock:
                self._done[task.id] = (key, result)
                while len(self._done) > MAX_CACHED:
                    self._done.pop(next(iter(self._done)))
        return result

    def prepare(self, task: Task, change: CodeChange) -> list[AttemptFailure] | None:
        """Failures for the Developer, or None when every dependency is installed (or none was asked for).

        Runs outside the workspace lock (an install takes a while). Raises AwaitingDependency.
        """
        with self._lock:
            self._ready.pop(task.id, None)
        if not change.dependencies:
            return None
        if self.gate is None:
            return [AttemptFailure("dependencies", "this daemon installs no dependencies")]
        result = self._gate(task, change.dependencies)
        if result.awaiting is not None:
            self.dev.record("dependency_approval_requested", task, packages=result.awaiting["packages"])
            raise AwaitingDependency(result.awaiting)
        if result.failures:
            self.dev.record("dependency_refused", task, reasons=result.failures[:5])
            return [AttemptFailure("dependencies", f) for f in result.failures]
        with self._lock:
            self._ready[task.id] = result
        return None

    def request(self, task: Task, requests: list[DependencyRequest]) -> tuple[bool, str]:
        """The ``request_dependency`` tool: (waits for a human?, what the model is told). Installs an
        allowed set at once; raises ToolError (the model is told to do without) when refused."""
        if self.gate is None:
            raise ToolError("this daemon installs no dependencies: do without the package")
        result = self._gate(task, requests)
        if result.failures:
            self.dev.record("dependency_refused", task, reasons=result.failures[:5])
            raise ToolError("; ".join(result.failures)[:2000])
        if result.awaiting is not None:
            listed = ", ".join(f"{p['name']}=={p['version']}" for p in result.awaiting["packages"])
            return True, (f"{listed} is not in dependencies.allow: a human must approve it. Write the code as if it "
                          "were installed and call finish; the task waits for the approval, then your tests run "
                          "with it (rejected, you are told and must do without it).")
        listed = ", ".join(f"{p['name']}=={p['version']}" for p in result.packages()
                           if canonical(p["name"]) in {canonical(r.name) for r in requests})
        extra = len(result.packages()) - len(listed.split(", ")) if listed else 0
        return False, (f"installed {listed or ', '.join(r.name for r in requests) + ' (already there)'}"
                       + (f" and {extra} packages it needs" if extra > 0 else "")
                       + " into the project's environment (the manifest and lock file are committed with your "
                       "code); run_tests sees it now")

    def write_files(self, task: Task) -> list[str]:
        """Write the manifest and lock file of what ``prepare`` installed for ``task`` (lock held by the caller)."""
        with self._lock:
            result = self._ready.get(task.id)
        if result is None:
            return []
        written = []
        for path, text in result.files(self._read).items():
            self.ws.fs.write_file(path, text)
            written.append(path)
        return written
