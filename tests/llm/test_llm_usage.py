"""Cache, llm_calls rows and costs, prices, per-agent settings, and the daily budget (live)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import BaseModel
from structlog.testing import capture_logs

from ai_agents.config.models import ModelPrice
from ai_agents.domain import utcnow
from ai_agents.errors import BudgetExceeded
from ai_agents.llm.usage import BudgetGuard, Pricer, find_price


class Tag(BaseModel):
    label: str


def test_cache_hit_makes_no_request_and_costs_nothing(server, make_client, entry, settings_for, llm_rows):
    client = make_client(settings_for(entry("openai", server)))

    first = client.generate("What is 2+2?", agent="cfo", task_id="t1")
    second = client.generate("What is 2+2?", agent="cfo", task_id="t1")

    assert len(server.requests) == 1
    assert second.cached and not first.cached and second.text == first.text
    assert (second.tokens_in, second.tokens_out) == (0, 0)
    hit = llm_rows()[1]
    assert (hit["cached"], hit["cost_usd"], hit["tokens_in"], hit["agent"], hit["task_id"]) == (1, 0.0, 0, "cfo", "t1")


def test_cache_key_covers_the_request(server, make_client, entry, settings_for):
    client = make_client(settings_for(entry("openai", server)))
    client.generate("q")
    client.generate("q", system="other system")
    client.generate("q", temperature=0.1)
    client.generate("q", max_tokens=5)
    client.generate_structured("q", Tag)
    client.generate_structured("q", Tag)
    assert len(server.requests) == 5


def test_a_cached_answer_that_no_longer_validates_is_replaced(server, make_client, entry, settings_for):
    from pydantic import field_validator

    client = make_client(settings_for(entry("openai", server)))
    server.enqueue({"label": "UPPER"})
    assert client.generate_structured("tag it", Tag).label == "UPPER"

    class Tag2(Tag):  # same JSON schema (so the same cache key), stricter validation
        @field_validator("label")
        @classmethod
        def lower(cls, v: str) -> str:
            if v != v.lower():
                raise ValueError("must be lower case")
            return v

    Tag2.__name__ = "Tag"
    assert Tag2.model_json_schema() == Tag.model_json_schema()
    server.enqueue({"label": "lower"})
    assert client.generate_structured("tag it", Tag2).label == "lower"  # fresh answer, no repair round
    assert client.generate_structured("tag it", Tag2).label == "lower"  # ... and now cached
    assert len(server.requests) == 2


def test_cache_off_and_live_toggle(server, make_client, entry, settings_for):
    settings = settings_for({**entry("openai", server), "cache": {"enabled": False}})
    client = make_client(settings)
    client.generate("q")
    client.generate("q")
    assert len(server.requests) == 2
    client.live.replace(settings.model_copy(update={"llm": settings.llm.model_copy(
        update={"cache": settings.llm.cache.model_copy(update={"enabled": True})})}))
    client.generate("q")
    client.generate("q")
    assert len(server.requests) == 3


def test_rows_and_costs_from_the_price_table(server, make_client, entry, settings_for, llm_rows):
    client = make_client(settings_for(entry("openai", server, model="gpt-4o-mini-2024-07-18")))
    response = client.generate("x" * 400, agent="developer", task_id="t9")
    [row] = llm_rows()
    # gpt-4o-mini: $0.15 in / $0.60 out per million tokens (longest matching key, not gpt-4o).
    expected = (response.tokens_in * 0.15 + response.tokens_out * 0.60) / 1_000_000
    assert row["cost_usd"] == pytest.approx(expected) and row["price_known"] == 1
    assert row["model"] == "gpt-4o-mini-2024-07-18" and row["latency_ms"] > 0
    assert (row["tokens_in"], row["tokens_out"]) == (response.tokens_in, response.tokens_out) == (101, 1)


def test_unknown_model_costs_zero_and_is_logged_once(server, make_client, entry, settings_for, llm_rows):
    client = make_client(settings_for(entry("openai_compatible", server, model="local-llama-3")))
    with capture_logs() as logs:
        client.generate("a")
        client.generate("b")
    assert [r["price_known"] for r in llm_rows()] == [0, 0]
    assert [r["cost_usd"] for r in llm_rows()] == [0.0, 0.0]
    assert [e["model"] for e in logs if e["event"] == "llm_price_unknown"] == ["local-llama-3"]


def test_find_price_and_pricer():
    prices = {"gpt-4o": ModelPrice(input=2.5, output=10), "gpt-4o-mini": ModelPrice(input=0.15, output=0.6)}
    assert find_price("gpt-4o-mini-2024-07-18", prices) is prices["gpt-4o-mini"]
    assert find_price("gpt-4o-2024-08-06", prices) is prices["gpt-4o"]
    assert find_price("o3", prices) is None
    assert Pricer().cost("gpt-4o", 1_000_000, 1_000_000, prices) == (12.5, True)


def test_agent_settings_apply_and_follow_live_edits(server, make_client, entry, settings_for):
    settings = settings_for(entry("openai", server),
                            agents={"developer": {"model": "gpt-4.1-mini", "temperature": 0.1, "max_tokens": 77}})
    client = make_client(settings)
    client.generate("a", agent="developer")
    client.generate("b", agent="qa")
    client.generate("c", agent="developer", temperature=0.9, max_tokens=5)
    dev = settings.agents.developer.model_copy(update={"temperature": 0.3})
    client.live.replace(settings.model_copy(update={
        "agents": settings.agents.model_copy(update={"developer": dev}),
        "llm": settings.llm.model_copy(update={"max_tokens": 999})}))
    client.generate("d", agent="developer")
    client.generate("e", agent="qa")
    sent = [(r.json["model"], r.json["temperature"], r.json["max_completion_tokens"]) for r in server.requests]
    assert sent == [("gpt-4.1-mini", 0.1, 77), ("gpt-4o-mini", 0.7, 2000), ("gpt-4.1-mini", 0.9, 5),
                    ("gpt-4.1-mini", 0.3, 77), ("gpt-4o-mini", 0.7, 999)]


def _with_budget(settings, **budget):
    return settings.model_copy(update={"budget": settings.budget.model_copy(update=budget)})


def test_token_budget_stops_calls_and_a_live_raise_lets_them_through(server, make_client, entry, settings_for):
    settings = _with_budget(settings_for({**entry("openai", server), "cache": {"enabled": False}}), daily_tokens=50)
    client = make_client(settings)
    client.generate("x" * 200, agent="ceo")  # ~52 tokens: reaches the cap

    with capture_logs() as logs:
        for _ in range(3):
            with pytest.raises(BudgetExceeded, match="daily_tokens"):
                client.generate("more", agent="ceo")
    assert len(server.requests) == 1
    exhausted = [e for e in logs if e["event"] == "budget_exhausted"]
    assert len(exhausted) == 1 and exhausted[0]["alert"] is True and exhausted[0]["alert_name"] == "budget_exhausted"

    status = client.budget_status()
    assert status["exhausted"] and status["remaining"]["tokens"] == 0
    assert status["per_agent"]["ceo"]["tokens"] == status["tokens"] >= 50

    client.live.replace(_with_budget(settings, daily_tokens=10_000))
    with capture_logs() as logs:
        assert client.generate("more", agent="ceo").text == "ok"
    assert [e["event"] for e in logs if e["event"].startswith("budget_")] == ["budget_restored"]
    assert client.budget_status()["remaining"]["tokens"] > 0


def test_cost_budget_and_cache_hits_still_served(server, make_client, entry, settings_for):
    settings = settings_for({**entry("openai", server), "prices": {"gpt-4o-mini": {"input": 1e6, "output": 0}}})
    client = make_client(_with_budget(settings, daily_usd=5.0))
    prompt = "tell me about the weather today"  # 8 prompt tokens at $1 each: over $5
    client.generate(prompt)
    with pytest.raises(BudgetExceeded, match="daily_usd"):
        client.generate("something new")
    assert client.generate(prompt).cached  # a cache hit costs nothing, so it is allowed
    assert len(server.requests) == 1
    with pytest.raises(BudgetExceeded):
        client.check_budget()


def test_a_new_utc_day_restores_the_budget(memory, settings_for):
    from ai_agents.config.live import LiveConfig

    live = LiveConfig(_with_budget(settings_for({}), daily_tokens=10))
    memory.record_llm_call(agent="qa", task_id=None, provider="openai", model="gpt-4o-mini", tokens_in=20)
    now = [utcnow()]
    guard = BudgetGuard(live, memory, clock=lambda: now[0])
    with capture_logs() as logs:
        with pytest.raises(BudgetExceeded):
            guard.check()
        now[0] = now[0] + timedelta(days=1)
        guard.check()
    assert [e["event"] for e in logs] == ["budget_exhausted", "budget_restored"]
