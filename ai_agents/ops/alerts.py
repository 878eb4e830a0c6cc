"""Alerts: one structured log event each, rate-limited per name, optionally sent to a webhook.

The caller never waits on the network: webhook deliveries go through a bounded
queue to one sender thread (started on first use), with a per-request timeout
and a bounded number of retries. ``alerts`` is a live config section, so the
URL, interval and retry settings are read from ``LiveConfig.current`` per alert.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import structlog

from ai_agents.config.live import LiveConfig
from ai_agents.domain import iso, utcnow
from ai_agents.logging_setup import Redactor
from ai_agents.memory.alerts import AlertStore, StoredAlert

log = structlog.get_logger("ai_agents.ops")
# Alert events get their own logger name so AlertLogHandler can tell them from alerts logged elsewhere.
ALERT_LOGGER = "ai_agents.ops.alerts"
alert_log = structlog.get_logger(ALERT_LOGGER)

# The stable alert names and how loud each is; any other name is logged as an error.
ALERT_LEVELS: dict[str, str] = {
    "critical_error": "error",
    "task_loop": "error",
    "api_limit": "warning",
    "git_problem": "error",
    "budget_exhausted": "error",
    "worker_restarted": "warning",
    "role_unhealthy": "error",
    "config_rejected": "error",
    "approval_needed": "warning",  # a human decision is waited for; not a fault
    "watchdog_expired": "critical",  # the main loop hung: the daemon exits for its restart policy
}
# Keys structlog or the alert itself uses; a field with one of these names is prefixed.
_RESERVED = frozenset({"event", "alert", "alert_name", "message", "level", "timestamp", "logger"})
# Longest pause between two webhook attempts; the first is 0.5 s, then doubling.
MAX_BACKOFF_SECONDS = 5.0

Sender = Callable[[str, bytes, float], None]
"""(url, JSON body, timeout seconds) -> None; raises on any failure."""


class PermanentWebhookError(Exception):
    """The webhook answered with a client error that retrying will not fix."""


def post_json(url: str, body: bytes, timeout: float) -> None:
    """The default sender: one HTTP(S) POST, raising on failure."""
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "ai-agents-alerter"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read(65536)
    except urllib.error.HTTPError as e:
        if 400 <= e.code < 500 and e.code not in (408, 429):
            raise PermanentWebhookError(f"HTTP {e.code}") from e
        raise


@dataclass
class _Delivery:
    name: str
    url: str
    body: bytes
    timeout: float
    retries: int


class Alerter:
    """``alert(name, message, **fields)``: log it, and POST it to ``alerts.webhook_url`` if set."""

    def __init__(self, live: LiveConfig, *, sender: Sender | None = None, redactor: Redactor | None = None,
                 host: str | None = None, queue_size: int = 100, clock: Callable[[], float] = time.monotonic,
                 backoff: float = 0.5):
        self.live = live
        self._send = sender or post_json
        self._redactor = redactor  # None: redact with the secrets of the config in force, per alert
        self._host = host or socket.gethostname()
        self._clock = clock
        self._backoff = backoff
        self._queue: queue.Queue[_Delivery | None] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._last_sent: dict[str, float] = {}
        self._pending_suppressed: dict[str, int] = {}
        self.suppressed: dict[str, int] = {}  # per name, since start
        self.dropped = 0  # deliveries lost to a full queue
        self.delivered = 0
        self.failed = 0
        self._stop = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    def alert(self, name: str, message: str, **fields: Any) -> bool:
        """Raise alert ``name``. Returns False when rate-limited (counted, not logged as an alert).

        Never blocks on the network and never raises for delivery problems.
        """
        return self._raise(name, message, fields, log_it=True)

    def forward(self, name: str, message: str, fields: dict[str, Any]) -> bool:
        """Like :meth:`alert` for an event someone already logged: rate limit and webhook only."""
        return self._raise(name, message, fields, log_it=False)

    def _raise(self, name: str, message: str, fields: dict[str, Any], *, log_it: bool) -> bool:
        cfg = self.live.current.alerts
        now = self._clock()
        pending = skipped = 0
        with self._lock:
            last = self._last_sent.get(name)
            if last is not None and now - last < cfg.min_interval_seconds:
                self.suppressed[name] = self.suppressed.get(name, 0) + 1
                pending = self._pending_suppressed[name] = self._pending_suppressed.get(name, 0) + 1
            else:
                self._last_sent[name] = now
                skipped = self._pending_suppressed.pop(name, 0)
        if pending:
            log.debug("alert_suppressed", alert_name=name, suppressed=pending)
            return False
        fields = {(f"field_{k}" if k in _RESERVED else k): v for k, v in fields.items()}
        if skipped:
            fields["suppressed_since_last"] = skipped
        level = ALERT_LEVELS.get(name, "error")
        if log_it:
            getattr(alert_log, level)(name, alert=True, alert_name=name, message=message, **fields)
        if cfg.webhook_url:
            self._enqueue(name, message, fields, level, cfg.webhook_url, cfg.webhook_timeout, cfg.webhook_retries)
        return True

    def _redact(self, payload: dict[str, Any]) -> dict[str, Any]:
        redactor = self._redactor or Redactor(self.live.current.secret_values())
        return redactor.redact_value(payload)

    def _enqueue(self, name: str, message: str, fields: dict[str, Any], level: str, url: str,
                 timeout: float, retries: int) -> None:
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            log.warning("alert_webhook_refused", alert_name=name, detail="alerts.webhook_url must be http(s)")
            return
        payload = {"alert": name, "level": level, "message": message, "fields": fields,
                   "timestamp": iso(utcnow()), "host": self._host,
                   # Slack and Mattermost incoming webhooks display "text".
                   "text": f"[{name}] {message}"}
        # Turn objects into strings first, so the redactor sees every string that will be sent.
        plain = json.loads(json.dumps(payload, default=str))
        body = json.dumps(self._redact(plain), ensure_ascii=False).encode()
        with self._lock:  # put under the lock so nothing slips in after close() drained the queue
            if self._closed:
                problem = "alerter is closed"
            else:
                self._ensure_thread()
                try:
                    self._queue.put_nowait(_Delivery(name, url, body, timeout, retries))
                    return
                except queue.Full:
                    self.dropped += 1
                    problem = "webhook queue full"
        # Logged outside the lock: AlertLogHandler runs inside log calls and may re-enter.
        log.warning("alert_not_sent", alert_name=name, detail=problem, dropped=self.dropped)

    def _ensure_thread(self) -> None:
        if self._thread is None:
            # Daemon thread as a last resort only: close() joins it; an interpreter exit
            # without close() must not hang on a slow webhook.
            self._thread = threading.Thread(target=self._run, name="alert-webhook", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._stop.is_set():
                log.warning("alert_not_delivered", alert_name=item.name, detail="shutdown before it was sent")
                continue  # keep draining so every abandoned alert is logged, until the sentinel
            try:
                self._deliver(item)
            except Exception:
                # A bug here must not kill the sender thread and silently stop all alerts.
                log.exception("alert_sender_error", alert_name=item.name)

    def _deliver(self, item: _Delivery) -> None:
        target = urllib.parse.urlsplit(item.url).hostname  # never log the URL: webhook URLs embed tokens
        for attempt in range(item.retries + 1):
            try:
                self._send(item.url, item.body, item.timeout)
                with self._lock:
                    self.delivered += 1
                return
            except PermanentWebhookError as e:
                error: Exception = e
                break
            except Exception as e:
                error = e
                if attempt == item.retries or self._stop.wait(min(self._backoff * 2 ** attempt, MAX_BACKOFF_SECONDS)):
                    break
        with self._lock:
            self.failed += 1
        log.warning("alert_webhook_failed", alert_name=item.name, webhook_host=target, attempts=attempt + 1,
                    error=f"{type(error).__name__}: {error}")

    def webhook_counts(self) -> dict[str, int]:
        """Webhook deliveries since start, by outcome: ``delivered``, ``failed`` (retries spent or a client
        error) and ``dropped`` (the delivery queue was full): for /metrics."""
        with self._lock:
            return {"delivered": self.delivered, "failed": self.failed, "dropped": self.dropped}

    def close(self, timeout: float = 5.0) -> None:
        """Stop accepting deliveries, give queued ones up to ``timeout`` s, then stop the thread."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is None:
            return
        deadline = time.monotonic() + timeout
        try:
            self._queue.put(None, timeout=max(0.0, timeout))  # after everything already queued
        except queue.Full:
            log.warning("alert_close_queue_full", pending=self._queue.qsize())
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            # Out of time: abandon retries and backoff waits; an in-flight POST still
            # ends within its own timeout.
            self._stop.set()
            self._drain_unsent()
            thread.join(max(1.0, self.live.current.alerts.webhook_timeout))
        if thread.is_alive():
            log.warning("alert_sender_still_running", detail="left behind as a daemon thread")

    def _drain_unsent(self) -> None:
        lost = 0
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                lost += 1
        # Cannot be full: just drained, and closed alerters enqueue nothing more.
        self._queue.put_nowait(None)  # wake the thread if it waits for work
        if lost:
            log.warning("alerts_not_delivered", count=lost, detail="shutdown before they were sent")


class AlertLogHandler(logging.Handler):
    """Forwards ``alert=True`` events logged by other modules to the Alerter (rate limit + webhook).

    ``ConfigWatcher`` logs ``config_rejected`` straight to structlog; without this
    handler on the root logger that alert would never reach the webhook.
    Requires structlog routed through stdlib logging (``configure_logging`` does).
    """

    def __init__(self, alerter: Alerter):
        super().__init__(logging.WARNING)
        self.alerter = alerter

    def emit(self, record: logging.LogRecord) -> None:
        event = record.msg  # structlog's ProcessorFormatter wrapper puts the event dict here
        if record.name == ALERT_LOGGER or not isinstance(event, dict) or event.get("alert") is not True:
            return
        try:
            name = str(event.get("alert_name") or event.get("event"))
            message = str(event.get("message") or event.get("detail") or event.get("event"))
            fields = {k: v for k, v in event.items() if k not in _RESERVED and not str(k).startswith("_")}
            self.alerter.forward(name, message, fields)
        except Exception:
            self.handleError(record)  # stdlib's way: prints the traceback to stderr, never raises


class AlertRecorder(logging.Handler):
    """Stores every event logged with ``alert=True`` in the ``alerts`` table: the one place alerts are written.

    The Alerter's own events and those other modules log (test tampering, the budget,
    stuck tasks, a rejected config) all pass the root logger, so one handler there
    sees them all; what the log level drops is not stored. Fields are redacted first.
    The code that logs never waits on the database: rows go through a bounded queue to
    one writer thread (a main loop stuck on SQLite's lock must still reach its
    watchdog). A full queue or a failed write is counted, never raised.
    """

    def __init__(self, store: AlertStore, redactor: Redactor, queue_size: int = 1000):
        super().__init__(logging.DEBUG)
        self.store = store
        self.redactor = redactor
        self._queue: queue.Queue[StoredAlert | None] = queue.Queue(maxsize=queue_size)
        self._thread_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._count_lock = threading.Lock()  # emit (any thread) and the writer thread both count
        self.dropped = 0  # a full queue, or logged after close(): the row never reaches the table
        self.failed = 0  # the row could not be built or written

    def not_stored(self) -> dict[str, int]:
        """Alerts that never became a row, since start, by reason (``dropped``, ``failed``): for /metrics."""
        with self._count_lock:
            return {"dropped": self.dropped, "failed": self.failed}

    def _count(self, reason: Literal["dropped", "failed"]) -> None:
        with self._count_lock:
            if reason == "dropped":
                self.dropped += 1
            else:
                self.failed += 1

    def emit(self, record: logging.LogRecord) -> None:
        event = record.msg  # structlog's event dict (see AlertLogHandler)
        if not isinstance(event, dict) or event.get("alert") is not True:
            return
        try:
            clean = self.redactor.redact_value(json.loads(json.dumps(event, default=str)))
            fields = {k: v for k, v in clean.items()
                      if k not in _RESERVED and k != "task_id" and not str(k).startswith("_")}
            row = StoredAlert(
                name=str(clean.get("alert_name") or clean.get("event")), level=record.levelname.lower(),
                message=str(clean.get("message") or clean.get("detail") or clean.get("event")),
                task_id=str(clean["task_id"]) if clean.get("task_id") else None, fields=fields, timestamp=utcnow())
            with self._thread_lock:
                if self._closed:
                    self._count("dropped")
                    return
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="alert-recorder", daemon=True)
                    self._thread.start()
                self._queue.put_nowait(row)
        except queue.Full:
            self._count("dropped")
        except Exception:
            self._count("failed")

    def _run(self) -> None:
        while (row := self._queue.get()) is not None:
            try:
                self.store.add(row)
            except Exception:
                self._count("failed")  # the database is gone or full: the log line still has the alert

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (up to ``timeout`` s), then stop the writer thread."""
        with self._thread_lock:
            self._closed, thread = True, self._thread
        if thread is not None and thread.is_alive():
            with contextlib.suppress(queue.Full):
                self._queue.put(None, timeout=timeout)
            thread.join(timeout)
        super().close()
