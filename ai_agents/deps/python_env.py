"""The project's Python environment: a virtualenv under the daemon's data directory, never the daemon's own.

Installs run outside the sandbox, with a time limit, from the configured index only (pip's own
config files and environment are ignored: ``--isolated``), wheels only unless configured. A
request is first resolved (``pip install --dry-run --report``) so every package it pulls in,
transitive ones included, passes the gate before anything is installed; then the exact pins with
their sha256 (the lock file) are installed with ``--require-hashes --no-deps``: by ``uv pip`` when
``uv`` is on PATH (faster; its own config files ignored: ``--no-config``), else by pip. The resolve
is pip's either way (its report names the one wheel chosen and its sha256: the lock's line).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import structlog

from ai_agents.config.models import DependenciesConfig
from ai_agents.errors import DependencyError

log = structlog.get_logger("ai_agents.deps")

LOCK_FILE = "requirements.lock"
MANIFEST = "requirements.txt"
ENV_DIR = "project-env"
NETWORK_ENV = frozenset({"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
                         "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE"})


@dataclass(frozen=True)
class Pinned:
    name: str
    version: str
    sha256: str

    def lock_line(self) -> str:
        return f"{self.name}=={self.version} --hash=sha256:{self.sha256}"


def _last_lines(text: str, n: int = 8) -> str:
    return "\n".join([ln for ln in text.splitlines() if ln.strip()][-n:])


class ProjectPythonEnv:
    """``<data dir>/project-env``: created with the daemon's interpreter (the tests import from it)."""

    def __init__(self, path: Path, *, index_url: str | None = None, only_binary: bool = True,
                 timeout: float = 300.0, uv: str | None = None):
        self.path = Path(path)
        self.index_url = index_url
        self.only_binary = only_binary
        self.timeout = timeout
        self.uv = uv  # the uv binary that installs (None: pip does)

    @classmethod
    def from_config(cls, cfg: DependenciesConfig, path: Path) -> ProjectPythonEnv:
        return cls(path, index_url=cfg.python_index, only_binary=cfg.only_binary, timeout=cfg.install_timeout,
                   uv=shutil.which("uv"))

    @property
    def installer(self) -> str:
        return "uv" if self.uv else "pip"

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def site_packages(self) -> Path:
        v = sys.version_info
        return self.path / "lib" / f"python{v.major}.{v.minor}" / "site-packages"

    def _pip(self, args: list[str], what: str, *, uv: bool = False) -> str:
        self.ensure()
        index = ["--index-url", self.index_url] if self.index_url else []
        binary = ["--only-binary", ":all:"] if self.only_binary else []
        if uv and self.uv:
            cmd = [self.uv, "pip", *args[:1], "--no-config", "--no-cache", "--python", str(self.python), *args[1:],
                   *index,
                   *binary]
        else:
            cmd = [str(self.python), "-m", "pip", "--isolated", "--disable-pip-version-check", "--no-input",
                   "--no-cache-dir", *args, *index, *binary]
        # The machine's network settings (proxy, CA bundle) and nothing else of the daemon's environment.
        env = {k: v for k, v in os.environ.items() if k in NETWORK_ENV}
        env |= {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.path), "LANG": "C.UTF-8"}
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout, env=env,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            raise DependencyError(f"{what} timed out after {self.timeout:g}s: "
                                  f"{_last_lines(str(e.stderr or ''))}") from e
        if proc.returncode != 0:
            raise DependencyError(f"{what} failed ({'uv' if uv and self.uv else 'pip'} exit {proc.returncode}): "
                                  f"{_last_lines(proc.stderr or proc.stdout)}")
        return proc.stdout

    def ensure(self) -> None:
        if self.python.exists():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            subprocess.run([sys.executable, "-m", "venv", str(self.path)], check=True, capture_output=True,
                           text=True, timeout=self.timeout, stdin=subprocess.DEVNULL)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
            raise DependencyError(f"could not create the project's virtualenv {self.path}: "
                                  f"{_last_lines(str(getattr(e, 'stderr', '') or e))}") from e

    def resolve(self, requirements: list[str]) -> list[Pinned]:
        """Every package ``requirements`` would install (transitive ones too), pinned with its sha256."""
        with tempfile.TemporaryDirectory(prefix="ai-agents-resolve-") as tmp:
            report = Path(tmp) / "report.json"
            self._pip(["install", "--dry-run", "--ignore-installed", "--report", str(report), "--quiet",
                       *requirements], f"resolving {', '.join(requirements)}")
            data = json.loads(report.read_text())
        pinned = []
        for item in data.get("install", []):
            meta, info = item.get("metadata", {}), item.get("download_info", {})
            sha = ((info.get("archive_info") or {}).get("hashes") or {}).get("sha256")
            if not sha:
                raise DependencyError(f"{meta.get('name')} has no sha256 from the index: refusing an unhashed "
                                      "download")
            pinned.append(Pinned(str(meta["name"]), str(meta["version"]), str(sha)))
        return pinned

    def install(self, pinned: list[Pinned]) -> None:
        """Install exactly ``pinned`` (hash-checked, no dependency resolution)."""
        with tempfile.TemporaryDirectory(prefix="ai-agents-install-") as tmp:
            lock = Path(tmp) / LOCK_FILE
            lock.write_text("".join(p.lock_line() + "\n" for p in pinned))
            self._pip(["install", "--require-hashes", "--no-deps", "-r", str(lock)],
                      "installing " + ", ".join(f"{p.name}=={p.version}" for p in pinned), uv=True)
        log.info("dependency_installed", ecosystem="python", env=str(self.path), installer=self.installer,
                 packages=[{"name": p.name, "version": p.version, "sha256": p.sha256} for p in pinned])


def lock_text(pinned: list[Pinned], existing: str = "") -> str:
    """The lock file with ``pinned`` merged into ``existing`` (one line per package, sorted)."""
    lines: dict[str, str] = {}
    for line in existing.splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            lines[line.split("==", 1)[0].strip().lower()] = line.strip()
    for p in pinned:
        lines[p.name.lower()] = p.lock_line()
    header = "# Written by the ai-agents daemon: the exact versions and hashes installed. Do not edit.\n"
    return header + "".join(lines[k] + "\n" for k in sorted(lines))


def manifest_text(names: dict[str, str], existing: str = "") -> str:
    """requirements.txt with ``names`` (name -> exact version) merged in."""
    lines: dict[str, str] = {}
    for line in existing.splitlines():
        stripped = line.split("#", 1)[0].strip()
        if stripped:
            key = stripped.split("==", 1)[0].split(">", 1)[0].split("<", 1)[0].strip().lower()
            lines[key] = stripped
    for name, version in names.items():
        lines[name.lower()] = f"{name}=={version}"
    return "".join(lines[k] + "\n" for k in sorted(lines))
