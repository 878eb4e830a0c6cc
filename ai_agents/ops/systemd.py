"""A tiny stdlib ``sd_notify``: tell systemd we are ready, alive, busy or stopping.

Protocol (``sd_notify(3)``): newline-separated ``KEY=VALUE`` lines in one
datagram to the AF_UNIX socket named by ``$NOTIFY_SOCKET``; a leading ``@``
means the Linux abstract namespace (a NUL byte). Without ``$NOTIFY_SOCKET``
(run by hand, under Docker, in tests) every call is a no-op, so callers never
need to ask whether they run under systemd.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Mapping

import structlog

log = structlog.get_logger("ai_agents.ops")


def _socket_address(raw: str | None) -> str | bytes | None:
    if not raw:
        return None
    if raw.startswith("@"):
        # Abstract namespace: the name begins with a NUL byte instead of '@'.
        return b"\0" + raw[1:].encode()
    if raw.startswith("/"):
        return raw
    # "vsock:..." and relative names are not something a unit we ship would set.
    log.warning("sd_notify_unsupported_socket", notify_socket=raw)
    return None


class SystemdNotifier:
    """Sends ``READY=1``, ``STATUS=``, ``WATCHDOG=1`` and ``STOPPING=1`` to systemd.

    ``env`` is read once here and never written (``sd_notify``'s "unset the
    environment" option is deliberately not offered: child processes are the
    daemon's own git/test runs, and ``NotifyAccess=main`` already ignores them).
    Safe to call from several threads.
    """

    def __init__(self, env: Mapping[str, str] | None = None, *, pid: int | None = None):
        env = os.environ if env is None else env
        self._address = _socket_address(env.get("NOTIFY_SOCKET"))
        self._watchdog_usec = env.get("WATCHDOG_USEC")
        self._watchdog_pid = env.get("WATCHDOG_PID")
        self._pid = os.getpid() if pid is None else pid
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """True when systemd (or a test) gave us a notification socket."""
        return self._address is not None

    def notify(self, *lines: str) -> bool:
        """Send raw ``KEY=VALUE`` lines; False when disabled or the send failed (logged)."""
        if self._address is None:
            return False
        payload = "\n".join(lines).encode()
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.sendto(payload, self._address)
                return True
            except OSError as e:
                # Never fatal: systemd restarted or the socket vanished; the watchdog
                # (if any) will notice missing pings, which is the right outcome.
                log.warning("sd_notify_failed", error=str(e), message=payload.decode(errors="replace"))
                self._close_locked()
                return False

    def ready(self, status: str = "running") -> bool:
        """Start-up finished: with ``Type=notify`` systemd considers the unit started now."""
        return self.notify("READY=1", f"STATUS={_one_line(status)}")

    def status(self, text: str) -> bool:
        """Free-form one-line status shown by ``systemctl status``."""
        return self.notify(f"STATUS={_one_line(text)}")

    def watchdog(self) -> bool:
        """Keep-alive ping; send only when the daemon is really making progress."""
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str = "stopping") -> bool:
        """Shutdown began: systemd shows 'deactivating' instead of a failure."""
        return self.notify("STOPPING=1", f"STATUS={_one_line(status)}")

    def watchdog_interval(self) -> float | None:
        """The watchdog timeout in seconds (``WatchdogSec=``), or None when no watchdog applies to us.

        Ping at least every half of it, as ``sd_watchdog_enabled(3)`` recommends.
        """
        if not self._watchdog_usec:
            return None
        if self._watchdog_pid:
            try:
                if int(self._watchdog_pid) != self._pid:
                    return None  # meant for another process (we were started by a wrapper)
            except ValueError:
                log.warning("sd_watchdog_bad_pid", watchdog_pid=self._watchdog_pid)
                return None
        try:
            usec = int(self._watchdog_usec)
        except ValueError:
            log.warning("sd_watchdog_bad_usec", watchdog_usec=self._watchdog_usec)
            return None
        return usec / 1_000_000 if usec > 0 else None

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _one_line(text: str) -> str:
    # A newline would start a new KEY=VALUE assignment in the datagram.
    return " ".join(str(text).split())
