"""The HTTP side of :class:`tests.fakes.llm_server.FakeLLMServer`: routing, faults, answers."""

from __future__ import annotations

import contextlib
import json
import select
import socket
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from tests.fakes import llm_wire as wire

# Answers broken below their content (not in the server's default FAULT_KINDS mix): a connection
# reset (RST), a 200 whose JSON body is cut off or is not JSON at all, an empty 200 body, a body
# shorter than its content-length, bytes that are not UTF-8, valid JSON of the wrong shape, an HTML 200.
WIRE_FAULT_KINDS = ("reset", "cut_json", "malformed_json", "empty_body", "short_body", "non_utf8",
                    "wrong_shape", "html_200")

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

    def _reset(self) -> None:
        """Close with a TCP RST (SO_LINGER 0) instead of an orderly FIN."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

    def _send_raw(self, data: bytes, *, content_type: str = "application/json", length: int | None = None) -> None:
        """A 200 with ``data`` as the body; ``length`` claims another content-length (then hang up)."""
        self.send_response(200)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data) if length is None else length))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()
        if length is not None:
            self._drop()

    def _wire_fault(self, fake: FakeLLMServer, req: wire.WireRequest, kind: str) -> None:
        """One of WIRE_FAULT_KINDS: an answer broken below the level of its content."""
        good = json.dumps(_answer(fake, req, fake._reply_for(req))).encode()
        if kind == "reset":
            self._reset()
        elif kind == "cut_json":
            self._send_raw(good[: len(good) // 2])  # well framed, but the JSON stops half-way
        elif kind == "malformed_json":
            self._send_raw(b'{"id": "x", "choices": [ nope }')
        elif kind == "empty_body":
            self._send_raw(b"")
        elif kind == "short_body":
            self._send_raw(good[: len(good) // 2], length=len(good))
        elif kind == "non_utf8":
            self._send_raw(b'{"id": "' + bytes([0xFF, 0xFE, 0xC0, 0xAF]) + b'"}')
        elif kind == "wrong_shape":
            shape = {"content": "not a list", "usage": 7} if req.api == "anthropic" else \
                {"choices": "not a list", "usage": 7, "model": 12}
            self._send_raw(json.dumps(shape).encode())
        elif kind == "html_200":
            self._send_raw(b"<html><body>502 Bad Gateway</body></html>", content_type="text/html")

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
        fake.wait_for_holds("\n".join([req.schema_name or "", *req.texts]))
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
        if fault in WIRE_FAULT_KINDS:
            self._wire_fault(fake, req, fault)
        elif fault in ("429", "500", "529"):
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
