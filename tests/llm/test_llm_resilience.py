"""Retries, Retry-After, fallback, timeouts, fatal errors and the rate limiter."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from structlog.testing import capture_logs

from ai_agents.errors import LLMAuthError, LLMRequestError, LLMUnavailableError
from ai_agents.llm.failures import ProviderTransientError, parse_retry_after
from ai_agents.llm.ratelimit import RateLimiter
from ai_agents.llm.retry import RetryPolicy
from tests.fakes.llm_server import FakeLLMServer


def test_429_with_retry_after_is_honoured_then_succeeds(server, make_client, entry, settings_for, sleeps, llm_rows):
    server.fail_next(1, status=429, headers={"retry-after": "1"})
    client = make_client(settings_for(entry("openai", server)))

    response = client.generate("hi", agent="qa")

    assert response.text == "ok"
    assert sleeps.calls == [1.0]  # the server's Retry-After, not the 10 ms backoff
    assert len(server.requests) == 2
    assert [r["error"] is not None for r in llm_rows()] == [True, False]
    assert "429" in llm_rows()[0]["error"]


def test_retry_after_really_waits_with_the_default_sleep(server, memory, entry, settings_for):
    from ai_agents.config.live import LiveConfig
    from ai_agents.llm import LLMClient

    server.fail_next(1, status=529, headers={"retry-after-ms": "300"})
    client = LLMClient.from_config(LiveConfig(settings_for(entry("anthropic", server))), memory,
                                   retry=RetryPolicy(base=0.01))
    started = time.monotonic()
    assert client.generate("hi").text == "ok"
    assert time.monotonic() - started >= 0.3
    client.close()


def test_every_wait_is_capped_by_retry_max_wait(server, make_client, entry, settings_for, sleeps):
    server.fail_next(1, status=429, headers={"retry-after": "3600"})
    client = make_client(settings_for({**entry("openai", server), "retry_max_wait": 2.5}))
    client.generate("hi")
    assert sleeps.calls == [2.5]


def test_backoff_is_exponential_with_jitter_when_no_retry_after(server, make_client, entry, settings_for, sleeps):
    server.fail_next(3, status=503, headers={})
    client = make_client(settings_for({**entry("openai", server), "max_retries": 3}), jitter=lambda lo, hi: hi)
    client.generate("hi")
    assert sleeps.calls == pytest.approx([0.02, 0.04, 0.08])  # base 0.01 * 2^n, plus full jitter


def test_parse_retry_after_forms():
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_retry_after({"retry-after": "7"}, now) == 7.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}, now) == 0.25
    assert parse_retry_after({"retry-after": format_datetime(now + timedelta(seconds=30), usegmt=True)}, now) == 30
    assert parse_retry_after({"retry-after": "garbage"}, now) is None
    assert parse_retry_after({}, now) is None


def test_500s_exhaust_primary_then_fallback_answers(server, make_client, entry, settings_for, sleeps, llm_rows):
    server.fail_next(3, status=500)  # max_retries 2: all three attempts of the primary fail
    settings = settings_for({**entry("openai", server), "fallback": [entry("anthropic", server)]})
    client = make_client(settings)

    with capture_logs() as logs:
        response = client.generate("hi")

    assert (response.provider, response.text) == ("anthropic", "ok")
    assert [r.path for r in server.requests] == ["/v1/chat/completions"] * 3 + ["/v1/messages"]
    [fallback] = [e for e in logs if e["event"] == "llm_fallback"]
    assert fallback["from"] == "openai:gpt-4o-mini" and fallback["to"] == "anthropic:claude-haiku-4-5"
    assert "500" in fallback["reason"]
    assert [(r["provider"], r["error"] is None) for r in llm_rows()] == [
        ("openai", False), ("openai", False), ("openai", False), ("anthropic", True)]
    assert len(sleeps.calls) == 2


def test_fallback_gets_its_own_model_not_the_agent_override(server, make_client, entry, settings_for):
    server.fail_next(3, status=500)
    settings = settings_for({**entry("openai", server), "fallback": [entry("openai_compatible", server,
                                                                             model="local-llama")]},
                            agents={"developer": {"model": "gpt-4.1-mini"}})
    make_client(settings).generate("hi", agent="developer")
    assert [r.json["model"] for r in server.requests] == ["gpt-4.1-mini"] * 3 + ["local-llama"]


def test_timeout_is_transient_and_falls_back(server, make_client, entry, settings_for):
    server.fault_rate(1.0, kinds=["timeout"])
    with FakeLLMServer() as healthy:
        settings = settings_for({**entry("openai", server, timeout=0.3), "max_retries": 0,
                                 "fallback": [entry("anthropic", healthy)]})
        started = time.monotonic()
        response = make_client(settings).generate("hi")
    assert response.provider == "anthropic"
    assert 0.3 <= time.monotonic() - started < 2.0


def test_timeout_everywhere_is_llm_unavailable(server, make_client, entry, settings_for):
    server.fault_rate(1.0, kinds=["timeout"])
    client = make_client(settings_for({**entry("anthropic", server, timeout=0.2), "max_retries": 1}))
    with pytest.raises(LLMUnavailableError, match="timeout") as info:
        client.generate("hi")
    assert isinstance(info.value.__cause__, ProviderTransientError)
    assert len(server.requests) == 2


def test_dropped_connections_are_retried(server, make_client, entry, settings_for):
    server.fault_rate(1.0, kinds=["drop"])
    client = make_client(settings_for(entry("openai", server)))
    with pytest.raises(LLMUnavailableError, match="dropped"):
        client.generate("hi")
    assert len(server.requests) == 3


def test_wrong_key_fails_at_once_saying_what_to_set(server, make_client, entry, settings_for, sleeps):
    server.require_key = "the-right-key"
    client = make_client(settings_for(entry("openai", server)))
    with pytest.raises(LLMAuthError) as info:
        client.generate("hi")
    assert str(info.value) == "OpenAI rejected the API key (401): set OPENAI_API_KEY or llm.api_key"
    assert len(server.requests) == 1 and sleeps.calls == []


def test_unknown_model_is_a_request_error_naming_the_model(server, make_client, entry, settings_for):
    server.unknown_models = {"gpt-4o-mini"}
    client = make_client(settings_for(entry("openai", server)))
    with pytest.raises(LLMRequestError, match=r"'gpt-4o-mini'.*404.*llm\.model"):
        client.generate("hi")
    assert len(server.requests) == 1


def test_misconfigured_fallback_is_skipped(server, make_client, entry, settings_for):
    server.require_key = "sk-test-fake-0000"
    settings = settings_for({**entry("openai", server, api_key="sk-test-wrong-1111"),
                             "fallback": [entry("anthropic", server)]})
    assert make_client(settings).generate("hi").provider == "anthropic"


def test_all_failing_with_any_transient_raises_unavailable(server, make_client, entry, settings_for):
    server.fail_next(3, status=500)
    server.unknown_models = {"claude-haiku-4-5"}
    settings = settings_for({**entry("openai", server), "fallback": [entry("anthropic", server)]})
    with pytest.raises(LLMUnavailableError, match="every LLM provider failed") as info:
        make_client(settings).generate("hi")
    assert "500" in str(info.value) and "404" in str(info.value)


def test_all_failing_fatally_raises_the_last_fatal_error(server, make_client, entry, settings_for):
    server.require_key = "the-right-key"
    settings = settings_for({**entry("openai", server), "fallback": [entry("anthropic", server)]})
    with pytest.raises(LLMAuthError, match="Anthropic"):
        make_client(settings).generate("hi")


def test_seeded_chaos_is_absorbed_by_retries(server, make_client, entry, settings_for, llm_rows):
    server.fault_rate(0.3, kinds=["429", "500", "529", "drop"], seed=7)
    client = make_client(settings_for({**entry("openai", server), "max_retries": 6}))
    texts = [client.generate(f"prompt {i}").text for i in range(20)]
    assert texts == ["ok"] * 20
    failed = [r for r in llm_rows() if r["error"]]
    assert failed and len(llm_rows()) == 20 + len(failed)


def test_concurrent_calls_from_threads(server, make_client, entry, settings_for, llm_rows):
    client = make_client(settings_for(entry("anthropic", server)))
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(10):
                assert client.generate(f"thread {n} call {i}").text == "ok"
        except BaseException as e:  # collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(llm_rows()) == 80


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_rate_limiter_waits_rather_than_fails():
    clock = FakeClock()
    limiter = RateLimiter(60, clock=clock, sleep=clock.sleep)
    waits = [limiter.acquire() for _ in range(62)]
    assert waits[:60] == [0.0] * 60  # one minute's burst
    assert waits[60] == pytest.approx(1.0) and waits[61] == pytest.approx(1.0)  # then one per second
    clock.now += 30
    assert [limiter.acquire() for _ in range(30)] == [0.0] * 30


def test_rate_limiter_never_grants_more_than_the_rate_under_contention():
    lock = threading.Lock()
    clock = FakeClock()

    def sleep(seconds: float) -> None:
        with lock:
            start = clock.now
        time.sleep(0)  # let other threads run meanwhile
        with lock:
            clock.now = max(clock.now, start + seconds)  # sleepers overlap, as in real time

    limiter = RateLimiter(60, clock=clock, sleep=sleep)
    grants: list[float] = []

    def work() -> None:
        for _ in range(15):
            limiter.acquire()
            with lock:
                grants.append(clock.now)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(grants) == 120
    # The k-th grant cannot come before the bucket (60 to start, one per second) held k tokens.
    assert all(k <= 60 + at + 1e-6 for k, at in enumerate(sorted(grants), start=1))
    assert max(grants) >= 59  # the 60 requests past the burst did wait
