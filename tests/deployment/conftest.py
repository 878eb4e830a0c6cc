"""Fixtures for the deployment tests: a real sshd, a stand-in docker CLI, a store, a "server" dir.

Everything runs real subprocesses; nothing is mocked. The runner's env is built
per test (HOME in tmp_path), so ssh never reads or writes root's ~/.ssh.
"""

from __future__ import annotations

import getpass
import os
import shlex
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ai_agents.config.models import DirectDeployConfig
from ai_agents.deployment import CommandRunner, minimal_env
from ai_agents.memory import Database, MemoryStore

RunnerFactory = Callable[..., CommandRunner]


@pytest.fixture
def make_runner(tmp_path: Path) -> RunnerFactory:
    """Build a runner whose env is minimal_env of ours, with HOME in tmp_path and an optional PATH prefix."""

    def make(*, path_prefix: Path | None = None, timeout: float = 20.0, extra: dict[str, str] | None = None,
             ) -> CommandRunner:
        home = tmp_path / "home"
        home.mkdir(exist_ok=True)
        path = os.environ.get("PATH", os.defpath)
        source = {**os.environ, **(extra or {}), "HOME": str(home),
                  "PATH": f"{path_prefix}{os.pathsep}{path}" if path_prefix else path}
        return CommandRunner(minimal_env(source), timeout=timeout, kill_grace=0.5)

    return make


@pytest.fixture
def runner(make_runner: RunnerFactory) -> CommandRunner:
    return make_runner()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MemoryStore]:
    db = Database(tmp_path / "state.sqlite")
    yield MemoryStore(db)
    db.close()


@dataclass
class Site:
    """A temp "server": releases/<commit>/app decides whether the check passes; marker names the live commit."""

    root: Path

    @property
    def server(self) -> Path:
        return self.root / "server"

    def release(self, commit: str, healthy: bool = True) -> None:
        app = self.root / "releases" / commit / "app"
        app.parent.mkdir(parents=True, exist_ok=True)
        app.write_text("exit 0\n" if healthy else "echo unhealthy >&2; exit 1\n")

    def marker(self) -> str:
        return (self.server / "marker").read_text().strip()

    def direct(self, **overrides: object) -> DirectDeployConfig:
        releases, server = shlex.quote(str(self.root / "releases")), shlex.quote(str(self.server))
        install = [f"cp {releases}/{{commit}}/app {server}/app", f"echo {{commit}} > {server}/marker"]
        values: dict[str, object] = {"transport": "local", "deploy_commands": install,
                                     "rollback_commands": install, "check_command": f"sh {server}/app"}
        return DirectDeployConfig(**{**values, **overrides})


@pytest.fixture
def site(tmp_path: Path) -> Site:
    s = Site(tmp_path / "site")
    s.server.mkdir(parents=True)
    return s


# --- a real sshd ------------------------------------------------------------------------
@dataclass
class Sshd:
    host: str
    port: int
    user: str
    key_path: Path
    known_hosts: Path
    host_public_key: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _banner(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            return s.recv(4).startswith(b"SSH-")
    except OSError:
        return False  # not listening yet: the caller polls again


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """A non-systemd sshd on 127.0.0.1 with its own host key, accepting one generated client key."""
    binary = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)
    if binary is None or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        pytest.skip("sshd is not installed (openssh-server and openssh-client; .ci/install_sshd.sh installs them)")
    root = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / name)], check=True)
    (root / "authorized_keys").write_text((root / "client_key.pub").read_text())
    # sshd refuses to start without its privilege-separation directory.
    Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
    log_file = root / "sshd.log"
    for _attempt in range(3):
        port = _free_port()  # freed again for sshd: another process may take it, hence the retries
        config = root / "sshd_config"
        config.write_text("\n".join([
            f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {root / 'host_key'}",
            f"PidFile {root / 'sshd.pid'}", f"AuthorizedKeysFile {root / 'authorized_keys'}",
            "UsePAM no", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes", "PermitRootLogin prohibit-password",
            # tmp dirs are not owned the way StrictModes wants for a home directory.
            "StrictModes no", "",
        ]))
        with log_file.open("ab") as log:
            proc = subprocess.Popen([binary, "-D", "-e", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline and not _banner(port):
            time.sleep(0.05)
        if proc.poll() is None and _banner(port):
            break
        proc.kill()
        proc.wait()
    else:
        pytest.fail(f"sshd did not start; its log:\n{log_file.read_text()}")
    host_key = (root / "host_key.pub").read_text().split()
    known_hosts = root / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    try:
        yield Sshd("127.0.0.1", port, getpass.getuser(), root / "client_key", known_hosts,
                   f"{host_key[0]} {host_key[1]}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --- a stand-in docker CLI ---------------------------------------------------------------
@dataclass
class FakeDocker:
    """``bin/docker`` appends its argv to calls.log; a subcommand listed in ``fail`` exits 1."""

    bin_dir: Path

    def calls(self) -> list[str]:
        log = self.bin_dir / "calls.log"
        return log.read_text().splitlines() if log.exists() else []

    def fail(self, *subcommands: str) -> None:
        (self.bin_dir / "fail").write_text("".join(f"{s}\n" for s in subcommands))

    def reset(self) -> None:
        (self.bin_dir / "calls.log").unlink(missing_ok=True)


FAKE_DOCKER = """#!/bin/sh
dir=$(dirname "$0")
printf '%s\\n' "$*" >> "$dir/calls.log"
# The deploy env must not carry the daemon's API keys.
if [ -n "${OPENAI_API_KEY:-}" ]; then echo "LEAKED OPENAI_API_KEY" >> "$dir/calls.log"; fi
if [ -f "$dir/fail" ] && grep -qx -- "$1" "$dir/fail"; then echo "fake docker: $1 failed" >&2; exit 1; fi
if [ "$1" = info ]; then echo 99.0-fake; fi
exit 0
"""


@pytest.fixture
def fake_docker(tmp_path: Path) -> FakeDocker:
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    script = bin_dir / "docker"
    script.write_text(FAKE_DOCKER)
    script.chmod(0o755)
    return FakeDocker(bin_dir)
