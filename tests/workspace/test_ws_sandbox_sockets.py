"""The sandbox has no host sockets: unix sockets the daemon's user can reach, and abstract ones.

Real bubblewrap, real pytest in it, real listening sockets on the host. The same tests run without
the sandbox do connect (each server counts its connections): the checks are not vacuous.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ai_agents.testing import TestRunner
from ai_agents.testing.sandbox import bwrap_args
from tests.hostile.harness import Listener

_CHECK = TestRunner(Path("/")).check().data
needs_bwrap = pytest.mark.skipif(
    _CHECK.get("sandbox") != "bwrap",
    reason="bubblewrap is not installed or cannot create namespaces here (.ci/install_sandbox.sh): "
           "the host-socket walls cannot be shown")


def _socket_dirs() -> Iterator[Path]:
    """Writable places for a host socket: /var/tmp and /run (or the user's runtime dir)."""
    for base in (Path("/var/tmp"), Path("/run"), Path(f"/run/user/{os.getuid()}")):
        if base.is_dir() and os.access(base, os.W_OK):
            yield Path(tempfile.mkdtemp(prefix="ai-agents-sock-", dir=base))


@pytest.fixture
def servers() -> Iterator[list[Listener]]:
    dirs = list(_socket_dirs())
    made = [Listener(str(d / "host.sock")) for d in dirs]
    made.append(Listener(f"\0ai-agents-abstract-{uuid.uuid4().hex}"))
    try:
        yield made
    finally:
        for server in made:
            server.close()
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)


def _tests_connecting_to(addresses: list[str]) -> str:
    # Sockets already on the host (a database's, dbus's, docker's) must be gone too.
    return textwrap.dedent(f"""\
        import glob
        import socket

        import pytest

        ADDRESSES = {addresses!r}


        @pytest.mark.parametrize("address", ADDRESSES)
        def test_unreachable(address):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(2)
                with pytest.raises(OSError):
                    s.connect(address)


        def test_run_and_var_tmp_are_empty():
            assert glob.glob("/run/**", recursive=True) == ["/run/"]
            assert glob.glob("/var/tmp/**", recursive=True) == ["/var/tmp/"]
            assert not glob.glob("/var/lib/**")
        """)


@needs_bwrap
def test_host_unix_and_abstract_sockets_unreachable_from_sandboxed_tests(
        workspace: Path, servers: list[Listener]) -> None:
    assert any(s.address.startswith("/var/tmp/") for s in servers)
    assert any(s.address.startswith("\0") for s in servers)
    addresses = [s.address for s in servers]
    (workspace / "tests").mkdir()
    (workspace / "tests" / "test_sockets.py").write_text(_tests_connecting_to(addresses))

    sandboxed = TestRunner(workspace, timeout=60, sandbox="bwrap").run_tests()
    assert sandboxed.sandbox == "bwrap"
    assert sandboxed.outcome == "passed", sandboxed.failures or sandboxed.output_tail
    assert sandboxed.passed_count == len(addresses) + 1
    assert [s.connections for s in servers] == [0] * len(servers)

    # Without the sandbox the very same connections succeed: every server is really reachable.
    bare = TestRunner(workspace, timeout=60, sandbox="none").run_specific_test("tests/test_sockets.py")
    assert bare.sandbox == "none" and bare.failed_count >= len(addresses)
    assert all(s.connections >= 1 for s in servers), [(s.address, s.connections) for s in servers]


@needs_bwrap
def test_sandbox_binds_only_what_tests_need(tmp_path: Path) -> None:
    """No host root: /var/lib, /home, /opt, /srv, /etc's secrets and host sockets are absent inside."""


    workspace = tmp_path / "ws"
    workspace.mkdir()
    bwrap = shutil.which("bwrap")
    assert bwrap
    args = bwrap_args(bwrap, workspace, [], [], [])
    script = ("for p in /var/lib /home /opt /srv /etc/ssh /etc/ssl/private; do "
              "if [ -e $p ] && [ -n \"$(ls -A $p 2>/dev/null)\" ]; then echo present:$p; fi; done; "
              "cat /etc/shadow 2>/dev/null | head -c 10; test -r /etc/passwd && echo passwd-readable; "
              "ls -A /run /var/tmp")
    out = subprocess.run([*args, "/bin/sh", "-c", script], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["passwd-readable", "/run:", "/var/tmp:"], out.stdout
    assert "--unshare-net" in args
    assert not any(a in ("--bind", "--ro-bind") and b == "/" for a, b in itertools.pairwise(args))


@needs_bwrap
def test_daemon_files_inside_the_workspace_hidden_and_kept_paths_read_only(tmp_path: Path) -> None:
    """workspace_path "." beside data/: data/ is an empty tmpfs inside; kept paths and a venv there are read-only."""
    workspace = tmp_path / "ws"
    for d in ("data", "node_modules/pkg", ".venv/bin"):
        (workspace / d).mkdir(parents=True)
    (workspace / "data" / "ai_agents.db").write_text("memories")
    (workspace / "node_modules" / "pkg" / "index.js").write_text("module.exports = 1\n")
    bwrap = shutil.which("bwrap")
    assert bwrap
    args = bwrap_args(bwrap, workspace, [], [workspace / "data"], [workspace / ".venv"],
                      read_only=[workspace / "node_modules"])
    script = ("ls -A data; echo x > node_modules/pkg/index.js || echo ro-node; "
              "touch .venv/bin/planted || echo ro-venv; echo ok > written.txt && echo rw-workspace")
    out = subprocess.run([*args, "/bin/sh", "-c", script], capture_output=True, text=True, timeout=30)
    assert out.stdout.split() == ["ro-node", "ro-venv", "rw-workspace"], (out.stdout, out.stderr)
    assert (workspace / "data" / "ai_agents.db").read_text() == "memories"
    assert (workspace / "node_modules" / "pkg" / "index.js").read_text() == "module.exports = 1\n"
    assert not (workspace / ".venv" / "bin" / "planted").exists() and (workspace / "written.txt").exists()


def test_etc_secrets_hides_what_is_not_world_readable_and_never_descends_into_it(tmp_path: Path) -> None:
    """The walk behind the sandbox's /etc: named secrets and unreadable entries, at any depth, each once;
    nothing below a hidden directory, nothing through a symlink."""
    from ai_agents.testing.sandbox import etc_secrets

    etc = tmp_path / "etc"
    (etc / "ssh").mkdir(parents=True)                  # named in ETC_SECRETS, world-readable
    (etc / "ssh" / "sshd_config").write_text("x")
    (etc / "app" / "deep").mkdir(parents=True)
    (etc / "app" / "deep" / "token").write_text("s")
    (etc / "app" / "deep" / "token").chmod(0o640)      # unreadable to others, two levels down
    (etc / "app" / "readme").write_text("r")
    (etc / "vault").mkdir()
    (etc / "vault" / "inner").write_text("v")
    (etc / "vault").chmod(0o750)                       # hidden as a whole: its content is not listed
    (etc / "shadow").write_text("root:x")
    (etc / "shadow").chmod(0o600)                      # named and unreadable: listed once
    (etc / "link").symlink_to(etc / "app" / "deep")    # not followed
    found = etc_secrets(etc)
    assert sorted(found) == sorted([etc / "ssh", etc / "shadow", etc / "app" / "deep" / "token", etc / "vault"])
    assert len(found) == len(set(found))
