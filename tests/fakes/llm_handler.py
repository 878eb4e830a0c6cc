"""The HTTP side of :class:`tests.fakes.llm_server.FakeLLMServer`: routing, faults, answers."""

from __future__ import annotations

import contextlib
import json
import select
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from tests.fakes import llm_wire as wire

if TYPE_CHECKING:
    from tests.fakes.llm_server import FakeLLMServer


@dataclass(frozen=True)
class Failure:
    """One queued ``fail_next`` answer."""

    status: int
    headers: dict[str, str]
    body: Any


def _answer(fake: FakeLLMServer, req: wire.WireRequest, reply: Any, empty: bool = False) -> dict[str, Any]:
    if req.api == "anthropic":
        return wire.anthropic_answer(req, reply, usage=fake.usage, empty=empty)
    return wire.openai_answer(req, "" if empty else reply, usage=fake.usage)


class Handler(BaseHTTPRequestHandler):
    """One connection of the fake server; answers are decided by its FakeLLMServer."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the SDKs expect
    wbufsize = -1  # one buffered write per answer (flushed per request by the base class) ...
    server: Any

    def setup(self) -> None:
        super().setup()
        # ... and no Nagle: headers and body in separate small segments otherwise meet the
        # client's delayed ACK and stall every answer by ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read ``.requests`` instead."""

    def _send(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()  # here, where a hung-up client's BrokenPipeError is expected

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):  # the client may have gone first: gone either way
            self.connection.shutdown(socket.SHUT_RDWR)

    def _hang(self, fake: FakeLLMServer) -> None:
        """Hold the answer until the client gives up (its timeout closes the connection),
        the server stops, or ``hang_seconds`` pass: longer than any client timeout."""
        deadline = time.monotonic() + fake.hang_seconds
        while not fake._stopping.is_set() and time.monotonic() < deadline:
            readable, _, _ = select.select([self.connection], [], [], 0.05)
            if readable:
                try:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        return  # the client closed the connection
                except OSError:
                    return  # reset by the client: gone as well
                time.sleep(0.05)  # unexpected bytes (pipelining): keep holding

    def do_POST(self) -> None:
        fake: FakeLLMServer = self.server.fake
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            fake._record(self.path, headers, None)
            self._send(400, wire.error_body("openai", 400, "request body is not JSON"))
            return
        fake._record(self.path, headers, body)
        path = self.path.split("?")[0].rstrip("/")
        if path.endswith("/chat/completions"):
            req = wire.parse_openai(body)
        elif path.endswith("/messages"):
            req = wire.parse_anthropic(body)
        else:
            self._send(404, wire.error_body("openai", 404, f"no route {self.path}"))
            return
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client hung up: nobody to answer
            self._serve(fake, req)

    def _serve(self, fake: FakeLLMServer, req: wire.WireRequest) -> None:
        if fake.delay:
            time.sleep(fake.delay)  # a model that takes its time: work is in flight for a while
        if not fake._key_ok({k.lower(): v for k, v in self.headers.items()}):
            self._send(401, wire.error_body(req.api, 401, "invalid API key"))
            return
        if req.model in fake.unknown_models:
            self._send(404, wire.error_body(req.api, 404, f"model '{req.model}' not found"))
            return
        if req.mode in fake.reject:
            self._send(400, wire.error_body(req.api, 400, f"{req.mode} is not supported by this server"))
            return
        if "temperature" in fake.reject and req.temperature is not None:
            self._send(400, wire.error_body(req.api, 400, "temperature is not supported for this model"))
            return
        fault = fake._next_failure_or_fault()
        if isinstance(fault, Failure):
            body = fault.body if fault.body is not None else wire.error_body(
                req.api, fault.status, f"injected failure {fault.status}")
            self._send(fault.status, body, fault.headers)
            return
        if fault in ("429", "500", "529"):
            self._send(int(fault), wire.error_body(req.api, int(fault), f"injected fault {fault}"),
                       {"retry-after": "0"})
        elif fault == "timeout":
            self._hang(fake)
            self._drop()
        elif fault == "drop":
            self._drop()
        elif fault == "invalid_json":
            self._send(200, _answer(fake, req, "this is not JSON {"))
        elif fault == "schema_violation":
            reply = wire.violating_value(req.schema) if req.structured else fake._reply_for(req)
            self._send(200, _answer(fake, req, reply))
        elif fault == "empty":
            self._send(200, _answer(fake, req, "", empty=True))
        else:
            self._send(200, _answer(fake, req, fake._reply_for(req)))
