"""FakeLLMServer: a real HTTP server on 127.0.0.1 speaking OpenAI Chat Completions
(``POST /v1/chat/completions``) and Anthropic Messages (``POST /v1/messages``), for tests
that drive the real SDKs. No mocks: the SDKs do real HTTP against it.

In-process::

    with FakeLLMServer(script=Script.from_file("s.yaml")) as server:
        server.fail_next(2, status=500)
        ...  # point openai at server.openai_base_url, anthropic at server.base_url

From another process (prints its base URL on the first stdout line, serves until killed)::

    python -m tests.fakes.llm_server --port 0 --script FILE [--fault-rate R --seed S]

Answer order per request: auth (``require_key``) -> ``unknown_models`` (404) ->
``reject`` (400) -> ``fail_next`` -> ``fault_rate`` -> ``enqueue``d replies ->
the script -> defaults ("ok" for text, a minimal valid object for structured requests).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import signal
import socket
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ai_agents.llm.script import Script
from tests.fakes import llm_wire as wire

FAULT_KINDS = ("429", "500", "529", "timeout", "drop", "invalid_json", "schema_violation", "empty")


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]  # lower-case names
    json: Any


@dataclass(frozen=True)
class _Failure:
    status: int
    headers: dict[str, str]
    body: Any


class FakeLLMServer:
    """See the module docstring. All settings may be changed while it runs."""

    def __init__(self, script: Script | None = None, *, usage: bool = True, require_key: str | None = None,
                 unknown_models: Iterable[str] = (), reject: Iterable[str] = (),
                 hang_seconds: float = 5.0, host: str = "127.0.0.1", port: int = 0):
        self.script = script
        self.usage = usage
        self.require_key = require_key
        self.unknown_models = set(unknown_models)
        # Request features answered with 400: json_schema, json_object, tool (structured
        # modes a server may not support) and temperature (models that take none).
        self.reject = set(reject)
        self.hang_seconds = hang_seconds  # the "timeout" fault: longer than the client's timeout
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._replies: deque[Any] = deque()
        self._failures: deque[_Failure] = deque()
        self._fault_rate, self._fault_kinds, self._random = 0.0, FAULT_KINDS, random.Random(0)
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer((host, port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.fake = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.base_url}/v1"

    def start(self) -> FakeLLMServer:
        if self._thread is None:
            self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                            name="fake-llm-server", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- steering -------------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def set_script(self, script: Script | None) -> None:
        self.script = script

    def enqueue(self, reply: Any) -> None:
        """Answer the next request with ``reply`` (str = text, dict/list = JSON), before the script."""
        with self._lock:
            self._replies.append(reply)

    def fail_next(self, n: int, status: int = 429, headers: Mapping[str, str] | None = None,
                  body: Any = None) -> None:
        """Answer the next ``n`` requests with ``status`` (headers default to ``retry-after: 1``)."""
        hdrs = {"retry-after": "1"} if headers is None else dict(headers)
        with self._lock:
            self._failures.extend(_Failure(status, hdrs, body) for _ in range(n))

    def fault_rate(self, rate: float, kinds: Iterable[str] | None = None, seed: int | None = None) -> None:
        """Make each request fail with probability ``rate``, with one of ``kinds`` picked at random."""
        chosen = tuple(kinds) if kinds is not None else FAULT_KINDS
        unknown = set(chosen) - set(FAULT_KINDS)
        if unknown or not chosen or not 0 <= rate <= 1:
            raise ValueError(f"rate must be in [0, 1] and kinds a non-empty subset of {FAULT_KINDS}")
        with self._lock:
            self._fault_rate, self._fault_kinds, self._random = rate, chosen, random.Random(seed)

    # --- deciding an answer -------------------------------------------------------------
    def _record(self, path: str, headers: dict[str, str], body: Any) -> None:
        with self._lock:
            self._requests.append(RecordedRequest(path, headers, body))

    def _key_ok(self, headers: dict[str, str]) -> bool:
        if self.require_key is None:
            return True
        bearer = headers.get("authorization", "")
        return headers.get("x-api-key") == self.require_key or bearer == f"Bearer {self.require_key}"

    def _next_failure_or_fault(self) -> _Failure | str | None:
        with self._lock:
            if self._failures:
                return self._failures.popleft()
            if self._fault_rate and self._random.random() < self._fault_rate:
                return self._random.choice(self._fault_kinds)
        return None

    def _reply_for(self, req: wire.WireRequest) -> Any:
        with self._lock:
            if self._replies:
                return self._replies.popleft()
        script = self.script
        if script is not None:
            found, reply = script.match(schema=req.schema_name if req.structured else None, texts=req.texts,
                                        agent_known=False)
            if found:
                return reply
        return wire.minimal_value(req.schema) if req.structured else "ok"


def _answer(fake: FakeLLMServer, req: wire.WireRequest, reply: Any, empty: bool = False) -> dict[str, Any]:
    if req.api == "anthropic":
        return wire.anthropic_answer(req, reply, usage=fake.usage, empty=empty)
    return wire.openai_answer(req, "" if empty else reply, usage=fake.usage)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDKs expect
    server: Any

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

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):  # the client may have gone first: gone either way
            self.connection.shutdown(socket.SHUT_RDWR)

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
        if isinstance(fault, _Failure):
            body = fault.body if fault.body is not None else wire.error_body(
                req.api, fault.status, f"injected failure {fault.status}")
            self._send(fault.status, body, fault.headers)
            return
        if fault in ("429", "500", "529"):
            self._send(int(fault), wire.error_body(req.api, int(fault), f"injected fault {fault}"),
                       {"retry-after": "0"})
        elif fault == "timeout":
            fake._stopping.wait(fake.hang_seconds)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.llm_server", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--script", type=Path, help="rules file (YAML or JSON), see ai_agents.llm.script")
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--fault-kinds", default=",".join(FAULT_KINDS), help="comma-separated subset")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--no-usage", action="store_true", help="omit usage from answers")
    parser.add_argument("--require-key", default=None, help="answer 401 unless this key is sent")
    parser.add_argument("--unknown-model", action="append", default=[], help="answer 404 for this model")
    parser.add_argument("--hang-seconds", type=float, default=5.0, help="how long the 'timeout' fault hangs")
    args = parser.parse_args(argv)
    script = Script.from_file(args.script) if args.script else None
    server = FakeLLMServer(script, usage=not args.no_usage, require_key=args.require_key,
                           unknown_models=args.unknown_model, hang_seconds=args.hang_seconds,
                           host=args.host, port=args.port)
    if args.fault_rate:
        server.fault_rate(args.fault_rate, [k for k in args.fault_kinds.split(",") if k], args.seed)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    server.start()
    print(server.base_url, flush=True)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is the normal way to stop it by hand
        done.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
