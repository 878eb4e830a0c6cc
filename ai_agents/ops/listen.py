"""One HTTP listener on 'host:port' (IPv4 or IPv6) served from a background thread.

Shared by the metrics endpoint (ops/metrics_server.py) and the dashboard
(dashboard/server.py): parsing the listen address, binding, the serving thread,
the bound address and a clean stop live here once; each server keeps its own
request handler and policy (loopback-only, tokens).
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer


def parse_listen(listen: str) -> tuple[str, int]:
    """'127.0.0.1:9464', '[::1]:9464', ':9464' or '9464' -> (host, port); no host means 127.0.0.1."""
    text = listen.strip()
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
    elif ":" in text:
        host, _, port = text.rpartition(":")
    else:
        host, port = "", text
    if not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"a listen address must be host:port, not {listen!r}")
    return host or "127.0.0.1", int(port)


class _Serial(HTTPServer):
    allow_reuse_address = True


class _Serial6(_Serial):
    address_family = socket.AF_INET6


class _Threaded(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Threaded6(_Threaded):
    address_family = socket.AF_INET6


class Listener:
    """``handler`` served on ``listen`` by one background thread named ``name``.

    ``threaded=False`` answers one request at a time on that thread (the metrics
    endpoint: one thread, one SQLite connection for the life of the process);
    ``threaded=True`` gives each request its own daemon thread (the dashboard).
    """

    def __init__(self, listen: str, handler: type[BaseHTTPRequestHandler], *, name: str, threaded: bool):
        self.host, self.port = parse_listen(listen)
        self.handler = handler
        self.name = name
        self.threaded = threaded
        self._server: HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); the real port when 0 was asked for."""
        if self._server is None:
            return self.host, self.port
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        """Bind and serve from the background thread (nothing when already serving)."""
        if self._server is not None:
            return
        v6 = ":" in self.host
        server_cls = (_Threaded6 if v6 else _Threaded) if self.threaded else (_Serial6 if v6 else _Serial)
        self._server = server_cls((self.host, self.port), self.handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.5},
                                        name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop serving and close the socket; False when it was not serving."""
        if self._server is None:
            return False
        self._server.shutdown()  # returns once serve_forever has left its loop
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout)
        self._server, self._thread = None, None
        return True
