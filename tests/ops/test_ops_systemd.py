"""SystemdNotifier against a real AF_UNIX datagram socket standing in for systemd."""

from __future__ import annotations

import os
import socket
import uuid
from types import MappingProxyType

import pytest
from structlog.testing import capture_logs

from ai_agents.ops.systemd import SystemdNotifier


@pytest.fixture
def notify_socket(tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify.sock"
    sock.bind(str(path))
    sock.settimeout(2)
    yield str(path), sock
    sock.close()


def _drain(sock: socket.socket, n: int) -> list[str]:
    return [sock.recv(4096).decode() for _ in range(n)]


def test_lifecycle_messages_arrive_in_order(notify_socket):
    path, sock = notify_socket
    env = MappingProxyType({"NOTIFY_SOCKET": path})  # read-only: any write would raise
    notifier = SystemdNotifier(env)
    assert notifier.enabled
    assert notifier.ready("3 workers started")
    assert notifier.status("cycle 7\nqueue 2")  # a newline must not start a new assignment
    assert notifier.watchdog()
    assert notifier.stopping("draining 1 task")
    notifier.close()
    assert _drain(sock, 4) == [
        "READY=1\nSTATUS=3 workers started",
        "STATUS=cycle 7 queue 2",
        "WATCHDOG=1",
        "STOPPING=1\nSTATUS=draining 1 task",
    ]


def test_abstract_namespace_socket():
    name = f"ai-agents-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(2)
    try:
        notifier = SystemdNotifier({"NOTIFY_SOCKET": "@" + name})
        assert notifier.watchdog()
        assert sock.recv(100) == b"WATCHDOG=1"
        notifier.close()
    finally:
        sock.close()


def test_without_notify_socket_everything_is_a_no_op(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    for notifier in (SystemdNotifier({}), SystemdNotifier()):  # explicit env and os.environ
        assert not notifier.enabled
        assert notifier.ready() is False
        assert notifier.status("x") is False
        assert notifier.watchdog() is False
        assert notifier.stopping() is False
        assert notifier.watchdog_interval() is None


def test_reads_os_environ_once_at_construction(monkeypatch, notify_socket):
    path, sock = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    notifier = SystemdNotifier()
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert notifier.watchdog()
    assert sock.recv(100) == b"WATCHDOG=1"
    assert os.environ.get("NOTIFY_SOCKET") is None  # the notifier never put it back or changed it
    notifier.close()


def test_watchdog_interval():
    pid = os.getpid()
    assert SystemdNotifier({"WATCHDOG_USEC": "60000000"}).watchdog_interval() == 60.0
    assert SystemdNotifier({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": str(pid)}).watchdog_interval() == 60.0
    assert SystemdNotifier({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": str(pid + 1)}).watchdog_interval() is None
    assert SystemdNotifier({"WATCHDOG_USEC": "0"}).watchdog_interval() is None
    assert SystemdNotifier({"WATCHDOG_USEC": "soon"}).watchdog_interval() is None


def test_send_failure_is_logged_not_raised(tmp_path):
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    with capture_logs() as logs:
        assert notifier.ready() is False
    assert [e["event"] for e in logs] == ["sd_notify_failed"]
    assert "READY=1" in logs[0]["message"]
