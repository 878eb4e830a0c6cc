"""Alerts the recorder could not store are counted on /metrics: dropped (its queue was full) and failed
(the write failed), scraped from the running daemon's real endpoint."""

from __future__ import annotations

import sqlite3
import urllib.request

import structlog

from tests.conftest import wait_for
from tests.ops.test_ops_alerts import Webhook
from tests.ops.test_ops_metrics import parse_exposition

NOT_STORED = "ai_agents_alerts_not_stored_total"


def scrape(app) -> dict[str, float]:
    port = app.metrics_server.address[1]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        samples = parse_exposition(resp.read().decode())
    return {labels[0][1]: value for (name, labels), value in samples.items() if name == NOT_STORED}


def flood_rows(app) -> int:
    return app.db.query_one("SELECT COUNT(*) AS n FROM alerts WHERE name = 'flood'")["n"]


def test_alerts_dropped_or_failed_are_counted_on_metrics(fake_llm, build):
    app = build(fake_llm, {"metrics": {"listen": "127.0.0.1:0"}})
    recorder = app.alert_recorder
    assert scrape(app) == {"dropped": 0, "failed": 0}
    raise_alert = structlog.get_logger("ai_agents.test").warning

    # The writer thread waits on SQLite's lock: the queue (1000 rows) fills and the rest are dropped.
    blocker = sqlite3.connect(app.live.current.memory.database_path, timeout=1, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        for i in range(1005):
            raise_alert("flood", alert=True, alert_name="flood", message=f"alert {i}")
        assert recorder.dropped >= 4  # the writer may have taken one row off the queue before it blocked
        assert scrape(app) == {"dropped": recorder.dropped, "failed": 0}
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    # Every flood alert is a row or counted as dropped (another alert may have taken a slot: >=).
    wait_for(lambda: flood_rows(app) >= 1005 - recorder.dropped, timeout=60,
             message="the queued alerts written once the lock is released")
    assert flood_rows(app) <= 1001 and recorder.failed == 0  # the queue and the one row in hand

    # The table is gone: the write fails, is counted, and the daemon carries on.
    app.db.execute("DROP TABLE alerts")
    raise_alert("lost", alert=True, alert_name="lost", message="no table to hold it")
    wait_for(lambda: recorder.failed >= 1, message="the failed write counted")
    assert scrape(app) == recorder.not_stored() and recorder.not_stored()["failed"] >= 1


WEBHOOK = "ai_agents_alert_webhook_deliveries_total"


def test_webhook_deliveries_are_counted_on_metrics(fake_llm, build):
    """Delivered, failed (a client error: not retried) and dropped (the send queue of 100 was full while the
    webhook hung): the running daemon's counts, scraped from its real endpoint."""
    hook = Webhook()
    try:
        app = build(fake_llm, {"metrics": {"listen": "127.0.0.1:0"}, "alerts": {
            "webhook_url": hook.url, "webhook_retries": 0, "min_interval_seconds": 0}})

        def webhook_samples() -> dict[str, float]:
            port = app.metrics_server.address[1]
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
                samples = parse_exposition(resp.read().decode())
            return {labels[0][1]: value for (name, labels), value in samples.items() if name == WEBHOOK}

        assert webhook_samples() == {"delivered": 0, "failed": 0, "dropped": 0}
        alerter = app.alerter
        alerter.alert("first", "delivered")
        wait_for(lambda: alerter.webhook_counts()["delivered"] == 1, message="the first delivery")
        hook.status = 400
        alerter.alert("second", "refused by the webhook")
        wait_for(lambda: alerter.webhook_counts()["failed"] == 1, message="the refused delivery")
        # The webhook hangs on the next one: the 100 behind it fill the queue and one more is dropped.
        hook.status, hook.delay = 200, 60
        alerter.alert("stuck", "in flight")
        hook.wait_for(3)
        for i in range(101):
            alerter.alert(f"queued-{i}", "waits behind the stuck one")
        assert alerter.webhook_counts()["dropped"] == 1
        hook.release.set()
        wait_for(lambda: sum(alerter.webhook_counts().values()) == 104, timeout=30, message="every alert accounted")
        assert webhook_samples() == alerter.webhook_counts() == {"delivered": 102, "failed": 1, "dropped": 1}
    finally:
        hook.close()
