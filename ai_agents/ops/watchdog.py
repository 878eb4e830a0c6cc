"""The in-daemon watchdog: a stuck main loop ends the process so the restart policy restarts it.

systemd has its own watchdog (``WatchdogSec=`` and the ``WATCHDOG=1`` pings the
heartbeat sends only while the loop cycles). Docker, a plain ``nohup`` or a
supervisor without one never notice a hung daemon: Docker does not restart an
``unhealthy`` container. So one thread of our own watches the main loop's last
cycle; when it has not changed for ``orchestrator.watchdog_timeout`` seconds it
logs a critical alert holding every thread's stack and exits the process with
:data:`WATCHDOG_EXIT_CODE`, which ``restart: always`` / ``Restart=always`` turn
into a restart. A stuck loop has no clean way out (the stuck thread cannot be
interrupted), hence ``os._exit``; SQLite's journal and the leases make that as
safe as a ``kill -9``, which the chaos tests cover.

Progress is judged by the loop's marker *changing*, timed on the monotonic clock,
so a wall-clock step neither fires nor hides the watchdog.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import structlog

log = structlog.get_logger("ai_agents.ops")

# EX_SOFTWARE from sysexits.h: "an internal software error has been detected".
WATCHDOG_EXIT_CODE = 70
ALERT_NAME = "watchdog_expired"


def thread_stacks() -> dict[str, str]:
    """Every live thread's current stack, keyed ``name (ident)``."""
    names = {t.ident: t.name for t in threading.enumerate()}
    return {f"{names.get(ident, '?')} ({ident})": "".join(traceback.format_stack(frame))
            for ident, frame in sys._current_frames().items()}


class LoopWatchdog:
    """Watches ``progress()`` (any value that changes once per main-loop cycle).

    ``timeout()`` is read on every check, so a live config change applies; 0 turns
    the watchdog off until it is set again. ``alert(message, fields)`` raises the
    critical alert (the daemon passes its Alerter, which also posts the webhook);
    ``flush()`` gets a bounded moment to deliver it; ``exit`` ends the process.
    """

    def __init__(self, progress: Callable[[], object], timeout: Callable[[], float], *,
                 alert: Callable[[str, dict[str, Any]], object], flush: Callable[[], None] = lambda: None,
                 exit: Callable[[int], None] = os._exit, clock: Callable[[], float] = time.monotonic,
                 poll_interval: float | None = None):
        self._progress, self._timeout = progress, timeout
        self._alert, self._flush, self._exit, self._clock = alert, flush, exit, clock
        self._poll_interval = poll_interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen: object = None
        self._since = 0.0
        self.fired = False

    def start(self) -> None:
        if self._thread is not None:
            return
        self._seen, self._since = self._progress(), self._clock()
        self._thread = threading.Thread(target=self._run, name="loop-watchdog", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Before a clean shutdown: a draining daemon's loop stops cycling on purpose."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def check(self) -> bool:
        """One look; True when the loop is stuck past the timeout (and the watchdog fired)."""
        now, marker = self._clock(), self._progress()
        if marker != self._seen:
            self._seen, self._since = marker, now
            return False
        limit = self._timeout()
        stalled = now - self._since
        if limit <= 0 or stalled < limit:
            return False
        self._fire(stalled, limit)
        return True

    def _run(self) -> None:
        while not self._stop.wait(self._interval()):
            try:
                if self.check():
                    return
            except Exception:
                # A bug here must not leave the daemon without its watchdog silently.
                log.exception("watchdog_check_failed")

    def _interval(self) -> float:
        if self._poll_interval is not None:
            return self._poll_interval
        limit = self._timeout()
        return 5.0 if limit <= 0 else min(5.0, max(0.1, limit / 4))

    def _fire(self, stalled: float, limit: float) -> None:
        self.fired = True
        message = (f"main loop has not cycled for {stalled:.0f} s (orchestrator.watchdog_timeout {limit:g} s): "
                   f"exiting with {WATCHDOG_EXIT_CODE} so the restart policy restarts the daemon")
        try:
            self._alert(message, {"stalled_seconds": round(stalled, 1), "watchdog_timeout": limit,
                                  "exit_code": WATCHDOG_EXIT_CODE, "pid": os.getpid(), "stacks": thread_stacks()})
            self._flush()
        except Exception:
            log.exception("watchdog_alert_failed")  # exit regardless: a hung daemon helps nobody
        # Best effort right before exiting: the alert line must reach the log.
        for stream in [*logging.getLogger().handlers, sys.stdout, sys.stderr]:
            with contextlib.suppress(Exception):
                stream.flush()
        self._exit(WATCHDOG_EXIT_CODE)
