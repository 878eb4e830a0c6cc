"""A running daemon under a fake systemd: sd_notify order, health, Prometheus metrics, an alert to a webhook."""

from __future__ import annotations

import json
import signal
import socket
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

import yaml

from tests.conftest import wait_for
from tests.daemon import Daemon, cli


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Webhook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Webhook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_notify_health_metrics_and_webhook_alert(write_config, tmp_path):
    notify_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify_path))
    sock.settimeout(0.2)
    hook = HTTPServer(("127.0.0.1", 0), Webhook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    port = free_port()
    config = write_config(None, {"metrics": {"listen": f"127.0.0.1:{port}"},
                                 "alerts": {"webhook_url": f"http://127.0.0.1:{hook.server_port}/hook"}})
    daemon = Daemon(config, env={"NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "10000000"}).start()
    messages: list[str] = []

    def drain() -> list[str]:
        try:
            while True:
                messages.append(sock.recv(4096).decode())
        except TimeoutError:
            return messages

    try:
        wait_for(lambda: any("WATCHDOG=1" in m for m in drain()), timeout=20, message="a watchdog ping")
        first = messages[0].splitlines()
        assert "READY=1" in first and any(line.startswith("STATUS=") for line in first)

        health = cli(config, "health")
        assert health.returncode == 0 and health.stdout.startswith("healthy")

        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        samples = [line for line in text.splitlines() if line and not line.startswith("#")]
        assert all(len(line.rsplit(" ", 1)) == 2 for line in samples)
        assert any(line.startswith('ai_agents_queue_depth{role="developer"}') for line in samples)
        assert any(line.startswith("ai_agents_healthy") and float(line.split()[-1]) == 1 for line in samples)

        config.write_text(config.read_text().replace("check_interval: 0.5", "check_interval: -1"))
        wait_for(lambda: any(a["alert"] == "config_rejected" for a in Webhook.received), timeout=15,
                 message="config_rejected alert at the webhook")
        alert = next(a for a in Webhook.received if a["alert"] == "config_rejected")
        assert "check_interval" in json.dumps(alert)
        config.write_text(config.read_text().replace("check_interval: -1", "check_interval: 0.5"))

        daemon.signal(signal.SIGTERM)
        assert daemon.wait(15) == 0
        drain()
        kinds = [next((k for k in ("READY=1", "STOPPING=1") if k in m), None) for m in messages]
        kinds = [k for k in kinds if k]
        assert kinds == ["READY=1", "STOPPING=1"]  # ready first, stopping last
        assert messages.index(next(m for m in messages if "STOPPING=1" in m)) > max(
            i for i, m in enumerate(messages) if "WATCHDOG=1" in m)
        health = cli(config, "health")
        assert health.returncode == 1
    finally:
        daemon.stop()
        hook.shutdown()
        sock.close()
        assert yaml.safe_load(config.read_text())["orchestrator"]["check_interval"] == 0.5
