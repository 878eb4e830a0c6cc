"""A throwaway PostgreSQL server for the tests: ``initdb`` into a temporary directory and
``pg_ctl start`` on a unix socket there and a free port on 127.0.0.1.

Debian's ``postgresql`` package provides the binaries (.ci/install_postgres.sh installs it). As root
the server runs as the ``postgres`` user (PostgreSQL refuses root), through ``runuser``. Without the
binaries :func:`server_or_skip` skips with the reason; never silently.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

SKIP_REASON = ("PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb, pg_ctl): "
               "run .ci/install_postgres.sh")


def find_bindir() -> Path | None:
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if all(os.access(Path(d) / b, os.X_OK) for b in ("initdb", "pg_ctl", "postgres")):
            return Path(d)
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """One PostgreSQL cluster in a temporary directory; ``url`` reaches it over TCP on 127.0.0.1."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="ai-agents-pg-"))
        self.datadir = self.root / "data"
        self.sockdir = self.root / "sock"
        self.port = free_port()
        self.user = "postgres" if os.geteuid() == 0 else None
        self.role = "agents"
        self._dbs = 0

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(a) for a in args]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=check,
                              env={**os.environ, "LC_ALL": "C"})

    def start(self) -> PgServer:
        self.sockdir.mkdir(parents=True)
        if self.user:
            shutil.chown(self.root, self.user)
            shutil.chown(self.sockdir, self.user)
        self._run(self.bindir / "initdb", "-D", self.datadir, "-A", "trust", "-U", self.role, "-E", "UTF8",
                  "--no-sync")
        with open(self.datadir / "postgresql.conf", "a") as f:
            f.write(f"listen_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = '{self.sockdir}'\n"
                    "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n"
                    "shared_buffers = 32MB\n")
        self.pg_ctl("start", "-w", "-t", "60", "-l", str(self.root / "server.log"))
        return self

    def pg_ctl(self, *args: str) -> None:
        self._run(self.bindir / "pg_ctl", "-D", self.datadir, *args)

    def restart(self) -> None:
        self.pg_ctl("restart", "-w", "-t", "60", "-m", "fast", "-l", str(self.root / "server.log"))

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.role}@127.0.0.1:{self.port}/{dbname}"

    def new_database(self, prefix: str = "t") -> str:
        """A fresh empty database on this server; its URL."""
        import psycopg

        self._dbs += 1
        name = f"{prefix}{self._dbs}_{os.getpid()}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        self._run(self.bindir / "pg_ctl", "-D", self.datadir, "stop", "-m", "immediate", check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def server_or_skip(request: pytest.FixtureRequest) -> PgServer:
    """The session's server (started on first use), or a skip naming what is missing."""
    server = getattr(request.session, "_ai_agents_pg", None)
    if server is None:
        bindir = find_bindir()
        if bindir is None:
            pytest.skip(SKIP_REASON)
        server = PgServer(bindir).start()
        request.session._ai_agents_pg = server  # type: ignore[attr-defined]
        request.session.config.add_cleanup(server.stop)
    return server
