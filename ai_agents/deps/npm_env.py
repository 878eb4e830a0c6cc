"""The project's npm packages: ``node_modules`` in the workspace, installed by the daemon outside the sandbox.

Two ways in, both ``--ignore-scripts`` unless ``dependencies.npm_scripts`` (no install script runs
on the daemon's machine), from the configured registry only (the user's and global ``.npmrc`` are
ignored), with a time limit:

- ``npm_install``: the project owner's ``package.json`` (e.g. jest itself): ``npm ci`` when a
  ``package-lock.json`` is committed, else ``npm install``; its direct dependencies must be allowed.
- ``npm_resolve`` + ``install_pinned``: a package the Developer asks for. Resolved first without
  installing anything (``--package-lock-only``, on a copy of the branch's manifest and lock), so
  every package it adds, transitive ones too, passes the gate with its version and integrity hash;
  then exactly those are installed into the workspace's ``node_modules`` through a staging
  directory (nothing already there is pruned), and the new ``package.json`` and
  ``package-lock.json`` are committed with the code.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import structlog

from ai_agents.config.models import Settings
from ai_agents.deps.policy import Verdict, decide
from ai_agents.errors import DependencyError

log = structlog.get_logger("ai_agents.deps")
NETWORK_ENV = frozenset({"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
                         "NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "SSL_CERT_DIR"})


def direct_dependencies(workspace: Path) -> dict[str, str]:
    """name -> range of package.json's dependencies and devDependencies."""
    try:
        data = json.loads((workspace / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DependencyError(f"package.json is unreadable: {e}") from e
    if not isinstance(data, dict):
        raise DependencyError("package.json is not a JSON object")
    deps: dict[str, str] = {}
    for key in ("dependencies", "devDependencies"):
        section = data.get(key) or {}
        if not isinstance(section, dict):
            raise DependencyError(f"package.json's {key} is not an object")
        deps.update({str(k): str(v) for k, v in section.items()})
    return deps


def _npm(settings: Settings, cwd: Path, args: list[str], what: str) -> None:
    """Run ``npm args`` in ``cwd`` isolated from the daemon's npm configuration; DependencyError on failure."""
    npm = shutil.which("npm")
    if npm is None:
        raise DependencyError("npm is not on PATH")
    cfg = settings.dependencies
    cmd = [npm, *args, *([] if cfg.npm_scripts else ["--ignore-scripts"]), "--no-audit", "--no-fund",
           "--no-update-notifier", *(["--registry", cfg.npm_registry] if cfg.npm_registry else [])]
    with tempfile.TemporaryDirectory(prefix="ai-agents-npm-") as home:
        for name in ("user.npmrc", "global.npmrc"):  # empty: no registry, token or script setting from elsewhere
            Path(home, name).write_text("")
        # The machine's network settings (proxy, extra CA certificates) and nothing else of the daemon's.
        env = {k: v for k, v in os.environ.items() if k in NETWORK_ENV}
        env |= {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "LANG": "C.UTF-8",
               "npm_config_userconfig": str(Path(home, "user.npmrc")),
               "npm_config_globalconfig": str(Path(home, "global.npmrc")),
               "npm_config_cache": str(Path.home() / ".npm"), "CI": "true"}
        try:
            proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env,
                                  timeout=cfg.install_timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            raise DependencyError(f"{what} timed out after {cfg.install_timeout:g}s") from e
    if proc.returncode != 0:
        last = "\n".join([ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()][-8:])
        raise DependencyError(f"{what} failed (npm exit {proc.returncode}): {last}")


def npm_install(settings: Settings, workspace: Path) -> list[dict[str, str]]:
    """Gate and install package.json's dependencies; returns what is installed (name, version, integrity)."""
    for name in direct_dependencies(workspace):
        verdict, why = decide(settings, name)
        if verdict != Verdict.ALLOW:  # the owner's manifest: allowed packages only, no approval round
            raise DependencyError(f"package.json dependency refused: {why}")
    verb = "ci" if (workspace / "package-lock.json").exists() else "install"
    _npm(settings, workspace, [verb], f"npm {verb}")
    lock = json.loads((workspace / "package-lock.json").read_text(encoding="utf-8"))
    installed = [{"name": path.rsplit("node_modules/", 1)[-1], "version": str(meta.get("version")),
                  "integrity": str(meta.get("integrity", ""))}
                 for path, meta in (lock.get("packages") or {}).items() if path and isinstance(meta, dict)]
    log.info("dependency_installed", ecosystem="npm", count=len(installed),
             packages=[p for p in installed if p["name"] in direct_dependencies(workspace)])
    return installed


@dataclass(frozen=True)
class NpmPinned:
    """One package of package-lock.json: where it goes under node_modules, its version and integrity hash."""

    path: str  # "node_modules/a" or "node_modules/a/node_modules/b"
    name: str
    version: str
    integrity: str


@dataclass(frozen=True)
class NpmResolution:
    """What a request adds: the packages new to the lock file, and the manifest and lock file to commit."""

    added: list[NpmPinned]
    package_json: str
    package_lock: str


def _lock_packages(lock_text: str | None) -> dict[str, NpmPinned]:
    if not lock_text:
        return {}
    try:
        packages = json.loads(lock_text).get("packages") or {}
    except (ValueError, AttributeError) as e:
        raise DependencyError(f"package-lock.json is unreadable: {e}") from e
    out = {}
    for path, meta in packages.items():
        if path.startswith("node_modules/") and isinstance(meta, dict) and not meta.get("link"):
            name = str(meta.get("name") or path.rsplit("node_modules/", 1)[-1])
            out[path] = NpmPinned(path, name, str(meta.get("version", "")), str(meta.get("integrity", "")))
    return out


def npm_resolve(settings: Settings, package_json: str | None, package_lock: str | None,
                specs: list[str]) -> NpmResolution:
    """Resolve ``specs`` (``name@version``) against the branch's manifest and lock; installs nothing."""
    with tempfile.TemporaryDirectory(prefix="ai-agents-npm-resolve-") as tmp:
        root = Path(tmp)
        (root / "package.json").write_text(package_json or '{"name": "project", "private": true}\n')
        if package_lock:
            (root / "package-lock.json").write_text(package_lock)
        elif package_json:  # no lock committed: what the manifest already pulls in is not what this request adds
            _npm(settings, root, ["install", "--package-lock-only"], "resolving package.json")
            package_lock = (root / "package-lock.json").read_text()
        _npm(settings, root, ["install", "--package-lock-only", "--save-exact", *specs],
             f"resolving {', '.join(specs)}")
        new_json = (root / "package.json").read_text()
        new_lock = (root / "package-lock.json").read_text()
    before, after = _lock_packages(package_lock), _lock_packages(new_lock)
    added = [p for path, p in sorted(after.items()) if before.get(path) != p]
    unhashed = [p.name for p in added if not p.integrity]
    if unhashed:
        raise DependencyError(f"{', '.join(unhashed)}: no integrity hash from the registry; refusing it")
    return NpmResolution(added, new_json, new_lock)


def install_pinned(settings: Settings, node_modules: Path, added: list[NpmPinned]) -> None:
    """Put exactly ``added`` into ``node_modules`` (the workspace's), each at its lock-file path.

    npm installs them into a staging directory (one per version of a name), from which each package
    directory is copied in and renamed into place; nothing else in ``node_modules`` changes."""
    rounds: list[list[NpmPinned]] = []
    for p in added:  # a name wanted in two versions (nested copies): a second staging round
        target = next((r for r in rounds if all(q.name != p.name for q in r)), None)
        if target is None:
            rounds.append(target := [])
        target.append(p)
    with tempfile.TemporaryDirectory(prefix="ai-agents-npm-stage-") as tmp:
        staged: dict[NpmPinned, Path] = {}
        for i, packages in enumerate(rounds):
            stage = Path(tmp) / str(i)
            stage.mkdir()
            (stage / "package.json").write_text('{"name": "stage", "private": true}\n')
            _npm(settings, stage, ["install", "--no-save", "--no-package-lock",
                                   *(f"{p.name}@{p.version}" for p in packages)],
                 "installing " + ", ".join(f"{p.name}@{p.version}" for p in packages))
            for p in packages:
                src = stage / "node_modules" / p.name
                try:
                    got = json.loads((src / "package.json").read_text()).get("version")
                except (OSError, ValueError):
                    got = None
                if got != p.version:
                    raise DependencyError(f"npm staged {p.name}@{got}, not the resolved {p.version}")
                staged[p] = src
        node_modules.mkdir(parents=True, exist_ok=True)
        for p, src in staged.items():
            dest = node_modules.parent / p.path
            dest.parent.mkdir(parents=True, exist_ok=True)
            fresh = dest.with_name(f".{dest.name}.ai-agents-new")
            shutil.rmtree(fresh, ignore_errors=True)
            shutil.copytree(src, fresh, symlinks=True)
            if dest.exists() or dest.is_symlink():
                old = dest.with_name(f".{dest.name}.ai-agents-old")
                shutil.rmtree(old, ignore_errors=True)
                dest.rename(old)
                fresh.rename(dest)
                shutil.rmtree(old, ignore_errors=True)
            else:
                fresh.rename(dest)
    log.info("dependency_installed", ecosystem="npm", node_modules=str(node_modules),
             packages=[{"name": p.name, "version": p.version, "integrity": p.integrity} for p in added])
