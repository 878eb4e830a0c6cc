"""Alerter against a real local webhook HTTP server."""

from __future__ import annotations

import io
import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import structlog
from structlog.testing import capture_logs

from ai_agents.config.live import ConfigWatcher, LiveConfig
from ai_agents.config.loader import load_config
from ai_agents.config.models import LoggingConfig, Settings
from ai_agents.logging_setup import Redactor, configure_logging
from ai_agents.ops.alerts import Alerter, AlertLogHandler, post_json

API_KEY = "sk-" + "proj-ABCDEFGHIJKLMNOPQRSTUVWXYZ123456"
GIT_TOKEN = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"


class Webhook:
    """A local webhook: records every POST body, answers ``status`` after ``delay`` seconds."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.status = 200
        self.delay = 0.0
        self.release = threading.Event()  # ends any pending delay at teardown
        self.arrived = threading.Condition()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with hook.arrived:
                    hook.bodies.append(body)
                    hook.arrived.notify_all()
                hook.release.wait(hook.delay)
                self.send_response(hook.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format, *args):
                pass  # keep test output clean; requests are asserted through .bodies

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/T0KEN"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def wait_for(self, n: int, timeout: float = 5.0) -> list[dict]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.bodies) >= n, timeout), f"got {len(self.bodies)} of {n}"
        return [json.loads(b) for b in self.bodies]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.close()


def live_config(url: str | None, **alerts) -> LiveConfig:
    settings = Settings.model_validate({"llm": {"api_key": API_KEY}, "git": {"token": GIT_TOKEN},
                                        "alerts": {"webhook_url": url, **alerts}})
    return LiveConfig(settings)


def test_alert_is_logged_and_delivered_without_secrets(webhook):
    live = live_config(webhook.url, webhook_retries=0)
    alerter = Alerter(live, redactor=Redactor(live.current.secret_values()), host="box-1")
    with capture_logs() as logs:
        assert alerter.alert("git_problem", f"push failed using {API_KEY}", remote="origin", token=GIT_TOKEN,
                             detail={"header": f"Authorization: Bearer {GIT_TOKEN}"})
    [payload] = webhook.wait_for(1)
    alerter.close()
    raw = webhook.bodies[0].decode()
    assert API_KEY not in raw and GIT_TOKEN not in raw
    assert payload["alert"] == "git_problem" and payload["host"] == "box-1" and payload["level"] == "error"
    assert payload["message"] == "push failed using [REDACTED]"
    assert payload["fields"]["remote"] == "origin"
    assert payload["fields"]["token"] == "[REDACTED]"
    assert payload["timestamp"].endswith("+00:00")
    [event] = [e for e in logs if e.get("alert")]
    assert event["alert_name"] == "git_problem" and event["log_level"] == "error" and event["remote"] == "origin"
    assert alerter.delivered == 1


def test_rate_limited_per_name_and_suppressed_ones_counted(webhook):
    clock = [1000.0]
    alerter = Alerter(live_config(webhook.url, min_interval_seconds=300), clock=lambda: clock[0])
    assert alerter.alert("task_loop", "task abc generated 3 times") is True
    assert alerter.alert("task_loop", "again") is False
    assert alerter.alert("task_loop", "and again") is False
    assert alerter.alert("api_limit", "429 from openai") is True  # another name is not limited
    clock[0] += 301
    with capture_logs() as logs:
        assert alerter.alert("task_loop", "still looping") is True
    payloads = webhook.wait_for(3)
    alerter.close()
    assert alerter.suppressed == {"task_loop": 2}
    assert [p["alert"] for p in payloads] == ["task_loop", "api_limit", "task_loop"]
    assert payloads[2]["fields"]["suppressed_since_last"] == 2
    assert logs[0]["suppressed_since_last"] == 2
    assert [p["level"] for p in payloads] == ["error", "warning", "error"]


def test_without_webhook_only_logs():
    alerter = Alerter(live_config(None))
    with capture_logs() as logs:
        assert alerter.alert("budget_exhausted", "daily budget of $5 reached", spent=5.01)
    alerter.close()
    assert [(e["event"], e["alert"], e["spent"]) for e in logs] == [("budget_exhausted", True, 5.01)]
    assert alerter._thread is None  # no sender thread without a webhook


def test_retries_are_bounded(webhook):
    webhook.status = 500
    alerter = Alerter(live_config(webhook.url, webhook_retries=2, webhook_timeout=2), backoff=0.01)
    alerter.alert("critical_error", "boom")
    webhook.wait_for(3)
    alerter.close(timeout=5)
    time.sleep(0.2)  # a fourth attempt would have arrived by now
    assert len(webhook.bodies) == 3
    assert (alerter.delivered, alerter.failed) == (0, 1)


def test_client_errors_are_not_retried(webhook):
    webhook.status = 404
    alerter = Alerter(live_config(webhook.url, webhook_retries=3), backoff=0.01)
    alerter.alert("critical_error", "boom")
    webhook.wait_for(1)
    alerter.close(timeout=5)
    assert len(webhook.bodies) == 1 and alerter.failed == 1


def test_webhook_down_never_blocks_the_caller():
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    attempts = []

    def sender(url, body, timeout):
        attempts.append(url)
        post_json(url, body, timeout)

    alerter = Alerter(live_config(f"http://127.0.0.1:{port}/", webhook_retries=2), sender=sender, backoff=0.01)
    started = time.perf_counter()
    assert alerter.alert("critical_error", "down")
    assert time.perf_counter() - started < 0.05
    alerter.close(timeout=5)
    assert len(attempts) == 3 and alerter.failed == 1


def test_slow_webhook_never_blocks_and_a_full_queue_drops(webhook):
    webhook.delay = 3.0
    alerter = Alerter(live_config(webhook.url, webhook_retries=1, webhook_timeout=0.3, min_interval_seconds=0),
                      queue_size=2, backoff=0.01)
    durations = []
    with capture_logs() as logs:
        for i in range(8):
            started = time.perf_counter()
            alerter.alert("worker_restarted", f"worker developer-{i} restarted")
            durations.append(time.perf_counter() - started)
    assert max(durations) < 0.05, durations
    assert alerter.dropped >= 5  # one in flight, two queued, the rest dropped
    assert sum(1 for e in logs if e["event"] == "alert_not_sent") == alerter.dropped
    started = time.perf_counter()
    alerter.close(timeout=0.5)
    # close waits at most its timeout plus one in-flight request's timeout (0.3 s), floored at 1 s.
    assert time.perf_counter() - started < 2.0
    assert not alerter._thread.is_alive()


@pytest.fixture
def stdlib_logging():
    """Route structlog through stdlib logging for one test, then put everything back."""
    saved_config = structlog.get_config()
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    configure_logging(LoggingConfig(file=None), Redactor(), stream=io.StringIO())
    yield root
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in saved_handlers:
        root.addHandler(h)
    root.setLevel(saved_level)
    structlog.configure(**saved_config)


def test_alerts_logged_elsewhere_reach_the_webhook(webhook, stdlib_logging, tmp_path):
    path = tmp_path / "config.yaml"
    # No rate limit, so a double forward of one alert would show as two requests.
    path.write_text(f"alerts:\n  webhook_url: {webhook.url}\n  webhook_retries: 0\n  min_interval_seconds: 0\n")
    live = LiveConfig(load_config(path), path)
    alerter = Alerter(live)
    stdlib_logging.addHandler(AlertLogHandler(alerter))
    watcher = ConfigWatcher(live, path)
    path.write_text("alerts:\n  webhook_urll: typo\n")  # rejected: unknown key
    assert watcher.check() is False
    [payload] = webhook.wait_for(1)
    assert payload["alert"] == "config_rejected"
    assert payload["message"] == "the previous config stays in force"
    assert "webhook_urll" in json.dumps(payload["fields"]["errors"])
    # The Alerter's own alert events are not forwarded a second time.
    alerter.alert("role_unhealthy", "qa keeps failing")
    webhook.wait_for(2)
    alerter.close()
    time.sleep(0.1)
    assert [json.loads(b)["alert"] for b in webhook.bodies] == ["config_rejected", "role_unhealthy"]
