"""What the code stage does with the Developer's ``dependencies``: gate, resolve, install, record.

Nothing the model wrote installs anything by itself: every requested package and everything it
pulls in is checked against ``dependencies.deny``/``allow`` (live), the rest waits for a human
(``approvals.required_for: [dependency]``); the daemon then installs the exact, hash-pinned set
into the project's environment and writes the manifest and lock file it commits with the code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ai_agents.agents.models import DependencyRequest
from ai_agents.config.live import LiveConfig
from ai_agents.deps.policy import Verdict, canonical, decide
from ai_agents.deps.python_env import LOCK_FILE, MANIFEST, Pinned, ProjectPythonEnv, lock_text, manifest_text
from ai_agents.errors import DependencyError

APPROVAL_ACTION = "dependency"


@dataclass
class GateResult:
    """failures: told to the Developer; awaiting: the approval request's details; installed: the exact set;
    wanted: the requested packages' pinned versions (the manifest's lines)."""

    failures: list[str] = field(default_factory=list)
    awaiting: dict[str, Any] | None = None
    installed: list[Pinned] = field(default_factory=list)
    wanted: dict[str, str] = field(default_factory=dict)

    def files(self, read: Callable[[str], str | None]) -> dict[str, str]:
        """The manifest and lock file merged into their current text (``read``: a workspace file or None)."""
        if not self.installed:
            return {}
        return {MANIFEST: manifest_text(self.wanted, read(MANIFEST) or ""),
                LOCK_FILE: lock_text(self.installed, read(LOCK_FILE) or "")}


class DependencyGate:
    def __init__(self, live: LiveConfig, env: Callable[[], ProjectPythonEnv]):
        self.live = live
        self.env = env

    def prepare(self, task_id: str, requests: list[DependencyRequest],
                approval_status: Callable[[str, str], str | None],
                approved: list[dict[str, Any]] | None = None) -> GateResult:
        """Gate and install ``requests``. ``approved``: the packages of the task's last approval request
        (an approval covers exactly those names, versions and hashes, nothing a later attempt asks for)."""
        if not requests:
            return GateResult()
        settings = self.live.current
        out = GateResult()
        npm = [r.name for r in requests if r.ecosystem != "python"]
        if npm:
            out.failures.append(f"npm packages ({', '.join(npm)}) are installed from package.json by the project's "
                                "owner, not requested by the Developer; do without them")
            return out
        for r in requests:
            verdict, why = decide(settings, r.name)
            if verdict == Verdict.DENY:
                out.failures.append(f"dependency refused: {why}; do without it")
        if out.failures:
            return out
        specs = [f"{r.name}=={r.version.lstrip('=')}" if r.version else r.name for r in requests]
        try:
            pinned = self.env().resolve(specs)
        except DependencyError as e:
            out.failures.append(f"dependency unavailable: {e}")
            return out
        unlisted: list[Pinned] = []
        for p in pinned:
            verdict, why = decide(settings, p.name)
            if verdict == Verdict.DENY:
                out.failures.append(f"dependency refused: {why} (needed by {', '.join(specs)}); do without it")
            elif verdict == Verdict.APPROVAL:
                unlisted.append(p)
        if out.failures:
            return out
        if unlisted:
            status = approval_status(task_id, APPROVAL_ACTION)
            covered = {(str(a.get("name")), str(a.get("version")), str(a.get("sha256"))) for a in approved or []}
            if status == "approved" and not all((p.name, p.version, p.sha256) in covered for p in unlisted):
                status = None  # approved was something else: ask again for this set
            if status in (None, "pending"):
                out.awaiting = {"action": APPROVAL_ACTION, "packages": [
                    {"name": p.name, "version": p.version, "sha256": p.sha256} for p in unlisted],
                    "why": {r.name: r.why for r in requests}}
                return out
            if status != "approved":
                out.failures.append(f"dependency {status} by a human: "
                                    + ", ".join(f"{p.name}=={p.version}" for p in unlisted) + "; do without it")
                return out
        try:
            self.env().install(pinned)
        except DependencyError as e:
            out.failures.append(f"dependency install failed: {e}")
            return out
        out.installed = pinned
        asked = {canonical(r.name) for r in requests}
        out.wanted = {p.name: p.version for p in pinned if canonical(p.name) in asked}
        return out
