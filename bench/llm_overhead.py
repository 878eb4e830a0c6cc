"""Added latency of ``LLMClient.generate`` over a bare openai SDK call, same local fake server.

Run from the repository root::

    .venv/bin/python -m bench.llm_overhead [--calls 300]

The fake server runs in its own process so its threads do not compete with the client
for the GIL. Both sides make the same Chat Completions request; calls alternate so drift
hits both equally. The client runs as in production: cache enabled (every prompt distinct,
so each call pays a lookup, a miss and a store), a usage row per call, a daily budget set
(so the budget query runs), rate limiter, retry wrapper, and INFO JSON logging rendered.
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(REPO))

import openai  # noqa: E402

from ai_agents.config.live import LiveConfig  # noqa: E402
from ai_agents.config.models import LoggingConfig, Settings  # noqa: E402
from ai_agents.llm import LLMClient  # noqa: E402
from ai_agents.logging_setup import Redactor, configure_logging  # noqa: E402
from ai_agents.memory import Database, MemoryStore  # noqa: E402

KEY = "sk-test-fake-0000"


def start_server() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.llm_server", "--port", "0"], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=300, help="calls per side (at least 200)")
    parser.add_argument("--warmup", type=int, default=30)
    args = parser.parse_args()
    calls = max(args.calls, 200)

    proc, base_url = start_server()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings.model_validate({
                "llm": {"provider": "openai", "model": "gpt-4o-mini", "api_key": KEY, "base_url": base_url + "/v1",
                        "timeout": 10, "requests_per_minute": 10_000_000, "cache": {"enabled": True}},
                "budget": {"daily_usd": 1000.0, "daily_tokens": 100_000_000},
                "logging": {"file": None},
            })
            configure_logging(LoggingConfig(file=None, level="INFO"), Redactor(settings.secret_values()),
                              stream=io.StringIO())
            db = Database(Path(tmp) / "bench.db")
            client = LLMClient.from_config(LiveConfig(settings), MemoryStore(db))
            bare = openai.OpenAI(api_key=KEY, base_url=base_url + "/v1", timeout=10, max_retries=0)
            run = uuid.uuid4().hex[:8]

            def bare_call(i: int) -> float:
                started = time.perf_counter()
                bare.chat.completions.create(model="gpt-4o-mini", temperature=0.7, max_completion_tokens=2000,
                                             messages=[{"role": "user", "content": f"bare {run} {i}"}])
                return (time.perf_counter() - started) * 1000

            def client_call(i: int) -> float:
                started = time.perf_counter()
                response = client.generate(f"client {run} {i}")
                assert not response.cached
                return (time.perf_counter() - started) * 1000

            for i in range(args.warmup):
                bare_call(-i - 1)
                client_call(-i - 1)
            bare_ms, client_ms = [], []
            for i in range(calls):
                bare_ms.append(bare_call(i))
                client_ms.append(client_call(i))
            rows = db.query_one("SELECT COUNT(*) AS n FROM llm_calls")
            client.close()
            bare.close()
            db.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    bare_med, client_med = statistics.median(bare_ms), statistics.median(client_ms)
    print(f"calls per side: {calls} (after {args.warmup} warm-up), usage rows written: {rows['n'] if rows else 0}")
    print(f"bare openai SDK   median {bare_med:7.3f} ms   p90 {percentile(bare_ms, 0.9):7.3f} ms")
    print(f"LLMClient.generate median {client_med:7.3f} ms   p90 {percentile(client_ms, 0.9):7.3f} ms")
    print(f"added per call    median {client_med - bare_med:7.3f} ms   ratio {client_med / bare_med:.3f}x")
    print(f"target < 2 ms added: {'met' if client_med - bare_med < 2.0 else 'NOT met'}")


if __name__ == "__main__":
    main()
