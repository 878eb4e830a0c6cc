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
``reject`` (400) -> ``fail_next`` / ``fault_next`` -> ``fault_rate`` -> ``enqueue``d replies ->
the script -> defaults ("ok" for text, a minimal valid object for structured requests).
"""

from __future__ import annotations

import argparse
import contextlib
import random
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ai_agents.llm.script import Script
from tests.fakes import llm_wire as wire
from tests.fakes.llm_handler import WIRE_FAULT_KINDS, Failure, Handler

FAULT_KINDS = ("429", "500", "529", "timeout", "drop", "invalid_json", "schema_violation", "empty")


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]  # lower-case names
    json: Any


class FakeLLMServer:
    """See the module docstring. All settings may be changed while it runs."""

    def __init__(self, script: Script | None = None, *, usage: bool = True, require_key: str | None = None,
                 unknown_models: Iterable[str] = (), reject: Iterable[str] = (),
                 hang_seconds: float = 60.0, host: str = "127.0.0.1", port: int = 0,
                 delay: float = 0.0):
        self.script = script
        self.usage = usage
        self.require_key = require_key
        self.unknown_models = set(unknown_models)
        # Request features answered with 400: json_schema, json_object, tool (structured
        # modes a server may not support) and temperature (models that take none).
        self.reject = set(reject)
        # The "timeout" fault holds the answer until the client hangs up, at most this long.
        self.hang_seconds = hang_seconds
        self.delay = delay  # seconds before every answer
        # (markers, condition): a request holding every marker is answered once the condition holds.
        self._holds: list[tuple[tuple[str, ...], Callable[[], bool]]] = []
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._replies: deque[Any] = deque()
        self._failures: deque[Failure | str] = deque()
        self._fault_rate, self._fault_kinds, self._random = 0.0, FAULT_KINDS, random.Random(0)
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer((host, port), Handler)
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

    def hold(self, *markers: str, until: Callable[[], bool]) -> None:
        """Answer requests whose schema name and texts contain every marker only once ``until()`` is
        true (polled, at most ``hang_seconds``): a test orders a model call after something the daemon does."""
        with self._lock:
            self._holds.append((markers, until))

    def wait_for_holds(self, body: str) -> None:
        """Called by the handler before answering: ``body`` is the request's schema name and texts."""
        with self._lock:
            holds = [until for markers, until in self._holds if all(m in body for m in markers)]
        deadline = time.monotonic() + self.hang_seconds
        for until in holds:
            while not until() and time.monotonic() < deadline and not self._stopping.is_set():
                time.sleep(0.05)

    def enqueue(self, reply: Any) -> None:
        """Answer the next request with ``reply`` (str = text, dict/list = JSON), before the script.
        To a tool request, ``{"tool_calls": [{"name": ..., "arguments": {...}}], "text": ...}``
        answers with those tool calls."""
        with self._lock:
            self._replies.append(reply)

    def fail_next(self, n: int, status: int = 429, headers: Mapping[str, str] | None = None,
                  body: Any = None) -> None:
        """Answer the next ``n`` requests with ``status`` (headers default to ``retry-after: 1``)."""
        hdrs = {"retry-after": "1"} if headers is None else dict(headers)
        with self._lock:
            self._failures.extend(Failure(status, hdrs, body) for _ in range(n))

    def fault_next(self, kind: str, n: int = 1) -> None:
        """Answer the next ``n`` requests with the fault ``kind`` (one of FAULT_KINDS or WIRE_FAULT_KINDS)."""
        if kind not in FAULT_KINDS + WIRE_FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}")
        with self._lock:
            self._failures.extend(kind for _ in range(n))

    def fault_rate(self, rate: float, kinds: Iterable[str] | None = None, seed: int | None = None) -> None:
        """Make each request fail with probability ``rate``, with one of ``kinds`` picked at random."""
        chosen = tuple(kinds) if kinds is not None else FAULT_KINDS
        unknown = set(chosen) - set(FAULT_KINDS) - set(WIRE_FAULT_KINDS)
        if unknown or not chosen or not 0 <= rate <= 1:
            raise ValueError(f"rate must be in [0, 1] and kinds a non-empty subset of "
                             f"{FAULT_KINDS + WIRE_FAULT_KINDS}")
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

    def _next_failure_or_fault(self) -> Failure | str | None:
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
            schema = req.schema_name if req.structured or req.agentic else None
            found, reply = script.match(schema=schema, texts=req.texts, agent_known=False)
            if found:
                return reply
        return wire.minimal_value(req.schema) if req.structured else "ok"


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
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before every answer")
    parser.add_argument("--hang-seconds", type=float, default=60.0, help="cap on how long the 'timeout' fault holds")
    args = parser.parse_args(argv)
    script = Script.from_file(args.script) if args.script else None
    server = FakeLLMServer(script, usage=not args.no_usage, require_key=args.require_key,
                           unknown_models=args.unknown_model, hang_seconds=args.hang_seconds,
                           host=args.host, port=args.port, delay=args.delay)
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
