"""check_llm_chain against a live fake server, a closed port, a missing key and a wrong model."""

from __future__ import annotations

import socket

import yaml

from ai_agents.llm.doctor import check_llm_chain


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_doctor_reports_each_reachable_provider(server, make_client, entry, settings_for, llm_rows):
    settings = settings_for({**entry("openai", server), "fallback": [entry("anthropic", server)]})
    results = check_llm_chain(make_client(settings))

    assert [r.ok for r in results] == [True, True]
    assert [r.name for r in results] == ["llm", "llm.fallback[0]"]
    assert results[0].detail.startswith("openai:gpt-4o-mini: reachable") and "structured output works" in \
        results[0].detail
    assert results[1].data["model"] == "claude-haiku-4-5" and results[1].data["latency_ms"] > 0
    assert [r.path for r in server.requests] == ["/v1/chat/completions"] * 2 + ["/v1/messages"] * 2
    assert server.requests[1].json["response_format"]["json_schema"]["name"] == "DoctorPing"
    assert {r["agent"] for r in llm_rows()} == {"doctor"}


def test_doctor_bypasses_cache_budget_and_retries(server, make_client, entry, settings_for, sleeps):
    settings = settings_for(entry("openai", server), budget={"daily_tokens": 0})
    client = make_client(settings)
    assert check_llm_chain(client)[0].ok
    assert check_llm_chain(client)[0].ok
    assert len(server.requests) == 4  # nothing from the cache, budget of 0 not applied
    server.fail_next(1, status=429)
    [result] = check_llm_chain(client)
    # Reachable (the key and model were accepted), only busy: not a failure.
    assert result.ok and "reachable, rate-limited (429)" in result.detail and result.data["rate_limited"]
    server.fail_next(1, status=503)
    [result] = check_llm_chain(client)
    assert not result.ok and "503" in result.detail
    assert sleeps.calls == []


def test_doctor_on_a_closed_port_says_connection_refused(make_client, entry, settings_for, server):
    port = closed_port()
    settings = settings_for(entry("openai_compatible", server, base_url=f"http://127.0.0.1:{port}/v1"))
    [result] = check_llm_chain(make_client(settings))
    assert not result.ok and not result.data["reachable"]
    assert "connection refused" in result.detail and f"127.0.0.1:{port}" in result.detail


def test_doctor_detects_a_missing_key_without_a_call(monkeypatch, server, make_client, entry, settings_for):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    settings = settings_for({**entry("openai", server, api_key=None),
                             "fallback": [entry("anthropic", server, api_key=None)]})
    results = check_llm_chain(make_client(settings))
    assert [r.detail for r in results] == [
        "OpenAI API key missing: set OPENAI_API_KEY or llm.api_key",
        "Anthropic API key missing: set ANTHROPIC_API_KEY or llm.fallback[0].api_key"]
    assert server.requests == []


def test_doctor_reports_an_unknown_model_and_a_bad_key(server, make_client, entry, settings_for):
    server.unknown_models = {"gpt-5-nonexistent"}
    settings = settings_for(entry("openai", server, model="gpt-5-nonexistent"))
    [result] = check_llm_chain(make_client(settings))
    assert not result.ok and "does not know model 'gpt-5-nonexistent'" in result.detail
    server.require_key = "other"
    [result] = check_llm_chain(make_client(settings_for(entry("anthropic", server))))
    assert not result.ok and result.detail.startswith("Anthropic") and "401" in result.detail


def test_doctor_reports_broken_structured_output(server, make_client, entry, settings_for):
    server.enqueue("ok")
    server.enqueue("not json")
    server.enqueue("still not json")
    [result] = check_llm_chain(make_client(settings_for(entry("openai", server))))
    assert not result.ok and result.data["reachable"]
    assert result.detail.startswith("structured output failed:") and "DoctorPing" in result.detail


def test_doctor_on_a_scripted_model(tmp_path, make_client, settings_for):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"rules": [{"when": {"schema": "Plan"}, "reply": {"x": 1}}]}))
    [result] = check_llm_chain(make_client(settings_for({"provider": "scripted", "script_path": str(path)})))
    assert result.ok and "1 rules loaded" in result.detail
    path.write_text(yaml.safe_dump({"rules": [{"when": {"schema": "DoctorPing"}, "reply": {"ok": True}},
                                              {"when": {"contains": "Health check"}, "reply": "ok"}]}))
    [result] = check_llm_chain(make_client(settings_for({"provider": "scripted", "script_path": str(path)})))
    assert result.ok and "structured output works" in result.detail
