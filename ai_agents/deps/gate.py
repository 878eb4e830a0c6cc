"""What the code stage does with the Developer's ``dependencies``: gate, resolve, install, record.

Nothing the model wrote installs anything by itself: every requested package and everything it
pulls in is checked against ``dependencies.deny``/``allow`` (live), the rest waits for a human
(``approvals.required_for: [dependency]``); the daemon then installs the exact, hash-pinned set
into the project's environment and writes the manifest and lock file it commits with the code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ai_agents.agents.models import DependencyRequest
from ai_agents.config.live import LiveConfig
from ai_agents.deps.npm_env import NpmPinned, NpmResolution, install_pinned, npm_resolve
from ai_agents.deps.policy import Verdict, canonical, decide
from ai_agents.deps.python_env import LOCK_FILE, MANIFEST, Pinned, ProjectPythonEnv, lock_text, manifest_text
from ai_agents.errors import DependencyError

APPROVAL_ACTION = "dependency"
NPM_MANIFEST = "package.json"
NPM_LOCK = "package-lock.json"
Reader = Callable[[str], str | None]
"""A file of the task's branch (workspace-relative) or None."""


def _shown(p: Pinned | NpmPinned) -> dict[str, str]:
    """A package as the approval request shows it (and as an approval covers it)."""
    if isinstance(p, NpmPinned):
        return {"name": p.name, "version": p.version, "integrity": p.integrity, "ecosystem": "npm"}
    return {"name": p.name, "version": p.version, "sha256": p.sha256}


def _key(item: dict[str, Any]) -> tuple[str, str, str]:
    return str(item.get("name")), str(item.get("version")), str(item.get("sha256") or item.get("integrity"))


@dataclass
class GateResult:
    """failures: told to the Developer; awaiting: the approval request's details; installed: the exact
    Python set; wanted: the requested Python packages' pinned versions (the manifest's lines); npm: what
    an npm request added (installed) with the package.json and package-lock.json to commit."""

    failures: list[str] = field(default_factory=list)
    awaiting: dict[str, Any] | None = None
    installed: list[Pinned] = field(default_factory=list)
    wanted: dict[str, str] = field(default_factory=dict)
    npm: NpmResolution | None = None

    def packages(self) -> list[dict[str, str]]:
        """Everything installed, as logged and shown in ``status``."""
        everything: list[Pinned | NpmPinned] = [*self.installed, *(self.npm.added if self.npm else [])]
        return [_shown(p) for p in everything]

    def files(self, read: Reader) -> dict[str, str]:
        """The manifests and lock files merged into their current text (``read``: a workspace file or None)."""
        out: dict[str, str] = {}
        if self.installed:
            out |= {MANIFEST: manifest_text(self.wanted, read(MANIFEST) or ""),
                    LOCK_FILE: lock_text(self.installed, read(LOCK_FILE) or "")}
        if self.npm is not None:
            out |= {NPM_MANIFEST: self.npm.package_json, NPM_LOCK: self.npm.package_lock}
        return out


class DependencyGate:
    """``node_modules``: the workspace's, where requested npm packages go (shared by the task worktrees)."""

    def __init__(self, live: LiveConfig, env: Callable[[], ProjectPythonEnv], node_modules: Path | None = None):
        self.live = live
        self.env = env
        self.node_modules = node_modules

    def prepare(self, task_id: str, requests: list[DependencyRequest],
                approval_status: Callable[[str, str], str | None],
                approved: list[dict[str, Any]] | None = None, read: Reader | None = None) -> GateResult:
        """Gate and install ``requests``. ``approved``: the packages of the task's last approval request
        (an approval covers exactly those names, versions and hashes, nothing a later attempt asks for).
        ``read``: the branch's files (npm requests are resolved against its package.json and lock)."""
        if not requests:
            return GateResult()
        settings = self.live.current
        out = GateResult()
        python = [r for r in requests if r.ecosystem == "python"]
        npm = [r for r in requests if r.ecosystem == "npm"]
        if npm and self.node_modules is None:
            out.failures.append(f"npm packages ({', '.join(r.name for r in npm)}) cannot be installed by this "
                                "daemon; do without them")
        for r in requests:
            verdict, why = decide(settings, r.name)
            if verdict == Verdict.DENY:
                out.failures.append(f"dependency refused: {why}; do without it")
        if out.failures:
            return out
        specs = [f"{r.name}=={r.version.lstrip('=')}" if r.version else r.name for r in python]
        npm_specs = [f"{r.name}@{r.version.lstrip('=')}" if r.version else r.name for r in npm]
        pinned: list[Pinned] = []
        try:
            if python:
                pinned = self.env().resolve(specs)
            if npm:
                reader = read or (lambda _path: None)
                out.npm = npm_resolve(settings, reader(NPM_MANIFEST), reader(NPM_LOCK), npm_specs)
        except DependencyError as e:
            out.failures.append(f"dependency unavailable: {e}")
            out.npm = None
            return out
        unlisted: list[Pinned | NpmPinned] = []
        candidates: list[Pinned | NpmPinned] = [*pinned, *(out.npm.added if out.npm else [])]
        for p in candidates:
            verdict, why = decide(settings, p.name)
            if verdict == Verdict.DENY:
                out.failures.append(f"dependency refused: {why} (needed by {', '.join([*specs, *npm_specs])}); "
                                    "do without it")
            elif verdict == Verdict.APPROVAL:
                unlisted.append(p)
        if out.failures:
            out.npm = None
            return out
        if unlisted:
            status = approval_status(task_id, APPROVAL_ACTION)
            covered = {_key(a) for a in approved or []}
            if status == "approved" and not all(_key(_shown(p)) in covered for p in unlisted):
                status = None  # approved was something else: ask again for this set
            if status in (None, "pending"):
                out.awaiting = {"action": APPROVAL_ACTION, "packages": [_shown(p) for p in unlisted],
                                "why": {r.name: r.why for r in requests}}
                out.npm = None
                return out
            if status != "approved":
                out.failures.append(f"dependency {status} by a human: "
                                    + ", ".join(f"{p.name}=={p.version}" for p in unlisted) + "; do without it")
                out.npm = None
                return out
        try:
            if pinned:
                self.env().install(pinned)
            if out.npm is not None and self.node_modules is not None:
                install_pinned(settings, self.node_modules, out.npm.added)
        except DependencyError as e:
            out.failures.append(f"dependency install failed: {e}")
            out.npm = None
            return out
        out.installed = pinned
        asked = {canonical(r.name) for r in python}
        out.wanted = {p.name: p.version for p in pinned if canonical(p.name) in asked}
        return out
