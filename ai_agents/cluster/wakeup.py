"""LISTEN for new queued tasks on a dedicated PostgreSQL connection and wake this node's dispatcher.

Polling stays the fallback (the dispatcher also runs on its interval): a notification lost while
the connection was down costs at most one interval.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import psycopg
import structlog

log = structlog.get_logger("ai_agents.cluster")


class TaskListener:
    def __init__(self, url: str, channel: str, on_notify: Callable[[], object]):
        self.url = url
        self.channel = channel
        self.on_notify = on_notify
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-listen", daemon=True)
        self.notifications = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f'LISTEN "{self.channel}"')
                    while not self._stop.is_set():
                        woken = False
                        for _ in conn.notifies(timeout=1.0, stop_after=64):
                            woken = True
                            self.notifications += 1
                        if woken:
                            try:
                                self.on_notify()
                            except Exception as exc:  # the dispatcher's own error: logged, keep listening
                                log.warning("wakeup_failed", error=str(exc)[:200])
            except psycopg.Error as exc:
                log.warning("listen_connection_lost", error=str(exc)[:200])
                self._stop.wait(1.0)
