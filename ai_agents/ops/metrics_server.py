"""The HTTP side of metrics: ``/metrics`` (and ``/healthz``) from one background thread."""

from __future__ import annotations

from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

import structlog
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_CONTENT_TYPE

from ai_agents.config.models import listen_is_loopback
from ai_agents.ops.health import HealthReport
from ai_agents.ops.listen import Listener, parse_listen

log = structlog.get_logger("ai_agents.ops")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
__all__ = ["CONTENT_TYPE", "OPENMETRICS_CONTENT_TYPE", "MetricsServer", "parse_listen"]


class MetricsServer:
    """GET /metrics (and /healthz when given ``health``) served by one background thread.

    Binds loopback only unless ``allow_remote=True``: the endpoint has no
    authentication and reveals spend and workload. ``render`` gives text format
    0.0.4; with ``render_openmetrics`` a scraper that accepts OpenMetrics (as
    Prometheus does) gets that instead.
    """

    def __init__(self, listen: str, render: Callable[[], str], *,
                 health: Callable[[], HealthReport] | None = None, allow_remote: bool = False,
                 render_openmetrics: Callable[[], str] | None = None):
        self.host, self.port = parse_listen(listen)
        if not listen_is_loopback(listen) and not allow_remote:
            raise ValueError(f"metrics.listen host {self.host!r} is not loopback; the endpoint has no "
                             "authentication, so exposing it needs an explicit opt-in (allow_remote)")
        self._render, self._health, self._render_openmetrics = render, health, render_openmetrics
        # Serial on purpose, not threaded: Database keeps one SQLite connection per thread for the
        # life of the process, so a thread per scrape would leak a connection (and its file
        # descriptors) every 15 s. One server thread = one connection; the handler's socket
        # timeout bounds how long a bad client holds it.
        self._listener = Listener(listen, type("MetricsHandler", (_Handler,), {"owner": self}),
                                  name="metrics-http", threaded=False)

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); the real port when 0 was asked for."""
        return self._listener.address

    def start(self) -> None:
        if self._listener.running:
            return
        self._listener.start()
        log.info("metrics_server_started", host=self.address[0], port=self.address[1])

    def stop(self, timeout: float = 5.0) -> None:
        if self._listener.stop(timeout):
            log.info("metrics_server_stopped")


class _Handler(BaseHTTPRequestHandler):
    owner: MetricsServer
    timeout = 10  # socket timeout per read/write: a stalled client cannot hold the server thread for long
    server_version = "ai-agents-metrics"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            openmetrics = self.owner._render_openmetrics
            if openmetrics is None or "application/openmetrics-text" not in self.headers.get("Accept", ""):
                render, content_type = self.owner._render, CONTENT_TYPE
            else:
                render, content_type = openmetrics, OPENMETRICS_CONTENT_TYPE
            try:
                body, status = render().encode(), 200
            except Exception as e:
                log.exception("metrics_render_failed")
                body, status = f"metrics unavailable: {type(e).__name__}\n".encode(), 500
                content_type = "text/plain; charset=utf-8"
            self._send(status, body, content_type)
        elif path == "/healthz" and self.owner._health is not None:
            try:
                report = self.owner._health()
                body, status = (report.reason + "\n").encode(), 200 if report.ok else 503
            except Exception as e:
                log.exception("healthz_failed")
                body, status = f"health check failed: {type(e).__name__}\n".encode(), 500
            self._send(status, body, "text/plain; charset=utf-8")
        else:
            self._send(404, b"not found\n", "text/plain; charset=utf-8")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # The stdlib writes every request to stderr; scrapes every 15 s are noise, keep them at debug.
        log.debug("metrics_request", client=self.client_address[0], line=format % args)
