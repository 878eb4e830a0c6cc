"""The project's npm packages: ``node_modules`` in the workspace, installed by the daemon outside the sandbox.

``npm ci`` when a ``package-lock.json`` is committed (exact versions and integrity hashes), else
``npm install`` (which writes the lock file to commit). Always ``--ignore-scripts`` (no install
scripts run on the daemon's machine), from the configured registry only (the user's and global
``.npmrc`` are ignored), with a time limit. The direct dependencies of ``package.json`` pass the
supply-chain gate first; transitive ones are pinned by the lock file, not gated one by one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
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


def npm_install(settings: Settings, workspace: Path) -> list[dict[str, str]]:
    """Gate and install package.json's dependencies; returns what is installed (name, version, integrity)."""
    npm = shutil.which("npm")
    if npm is None:
        raise DependencyError("npm is not on PATH")
    for name in direct_dependencies(workspace):
        verdict, why = decide(settings, name)
        if verdict != Verdict.ALLOW:  # npm packages are not asked for by agents: no approval round here
            raise DependencyError(f"package.json dependency refused: {why}")
    cfg = settings.dependencies
    verb = "ci" if (workspace / "package-lock.json").exists() else "install"
    cmd = [npm, verb, "--ignore-scripts", "--no-audit", "--no-fund", "--no-update-notifier",
           *(["--registry", cfg.npm_registry] if cfg.npm_registry else [])]
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
            proc = subprocess.run(cmd, cwd=workspace, capture_output=True, text=True, env=env,
                                  timeout=cfg.install_timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            raise DependencyError(f"npm {verb} timed out after {cfg.install_timeout:g}s") from e
    if proc.returncode != 0:
        last = "\n".join([ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()][-8:])
        raise DependencyError(f"npm {verb} failed (exit {proc.returncode}): {last}")
    lock = json.loads((workspace / "package-lock.json").read_text(encoding="utf-8"))
    installed = [{"name": path.rsplit("node_modules/", 1)[-1], "version": str(meta.get("version")),
                  "integrity": str(meta.get("integrity", ""))}
                 for path, meta in (lock.get("packages") or {}).items() if path and isinstance(meta, dict)]
    log.info("dependency_installed", ecosystem="npm", count=len(installed),
             packages=[p for p in installed if p["name"] in direct_dependencies(workspace)])
    return installed
