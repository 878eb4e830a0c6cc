"""Each provider through the real SDK against the fake server: plain text and structured output."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from ai_agents.errors import LLMRequestError


class Verdict(BaseModel):
    approved: bool
    score: int
    reasons: list[str]


VERDICT = {"approved": True, "score": 8, "reasons": ["tests pass"]}


@pytest.mark.parametrize("kind", ["openai", "anthropic", "openai_compatible"])
def test_plain_answer(kind, server, make_client, entry, settings_for, llm_rows):
    server.enqueue("hello from the model")
    client = make_client(settings_for(entry(kind, server)))

    response = client.generate("Say hello", system="Be brief.", agent="developer", task_id="t-1")

    assert response.text == "hello from the model"
    assert response.provider == kind and not response.cached
    assert response.tokens_in > 0 and response.tokens_out > 0
    [request] = server.requests
    assert request.path == ("/v1/messages" if kind == "anthropic" else "/v1/chat/completions")
    body = request.json
    if kind == "anthropic":
        assert body["system"] == "Be brief."
        assert body["messages"] == [{"role": "user", "content": "Say hello"}]
        # anthropic 2.x sends the key as a bearer token; older versions used x-api-key.
        assert "sk-test-fake-0000" in (request.headers.get("x-api-key"), request.headers.get("authorization", "")[7:])
    else:
        assert body["messages"][0] == {"role": "system", "content": "Be brief."}
        assert request.headers["authorization"] == "Bearer sk-test-fake-0000"
    [row] = llm_rows()
    assert (row["agent"], row["task_id"], row["provider"], row["error"]) == ("developer", "t-1", kind, None)


def test_openai_structured_uses_json_schema_response_format(server, make_client, entry, settings_for):
    server.enqueue(VERDICT)
    client = make_client(settings_for(entry("openai", server)))

    verdict = client.generate_structured("Review this", Verdict)

    assert verdict == Verdict(**VERDICT)
    body = server.requests[0].json
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["name"] == "Verdict"
    assert body["response_format"]["json_schema"]["schema"]["required"] == ["approved", "score", "reasons"]
    assert "max_completion_tokens" in body and "max_tokens" not in body


def test_anthropic_structured_uses_forced_tool(server, make_client, entry, settings_for):
    server.enqueue(VERDICT)
    client = make_client(settings_for(entry("anthropic", server)))

    verdict = client.generate_structured("Review this", Verdict)

    assert verdict == Verdict(**VERDICT)
    body = server.requests[0].json
    assert body["tool_choice"] == {"type": "tool", "name": "Verdict"}
    assert body["tools"][0]["input_schema"]["properties"].keys() == {"approved", "score", "reasons"}


def test_openai_tool_mode_reads_the_function_arguments(server, make_client, entry, settings_for):
    server.enqueue(VERDICT)
    client = make_client(settings_for(entry("openai", server, structured_mode="tool")))

    assert client.generate_structured("Review this", Verdict) == Verdict(**VERDICT)
    assert server.requests[0].json["tool_choice"] == {"type": "function", "function": {"name": "Verdict"}}


def test_openai_compatible_falls_back_to_json_object_and_remembers(server, make_client, entry, settings_for,
                                                                  llm_rows):
    server.reject = {"json_schema"}
    server.enqueue(VERDICT)
    server.enqueue(VERDICT)
    client = make_client(settings_for(entry("openai_compatible", server)))

    first = client.generate_structured("Review this", Verdict)
    second = client.generate_structured("Review that", Verdict)

    assert first == second == Verdict(**VERDICT)
    formats = [r.json.get("response_format", {}).get("type") for r in server.requests]
    assert formats == ["json_schema", "json_object", "json_object"]  # remembered: no second 400
    system = server.requests[1].json["messages"][0]
    assert system["role"] == "system" and "Verdict" in system["content"] and '"approved"' in system["content"]
    assert "max_tokens" in server.requests[1].json  # compatible servers get the classic name
    errors = [r["error"] for r in llm_rows()]
    assert errors[0] is not None and "json_schema" in errors[0] and errors[1:] == [None, None]


def test_openai_compatible_reaches_plain_instruction_mode(server, make_client, entry, settings_for):
    server.reject = {"json_schema", "json_object"}
    client = make_client(settings_for(entry("openai_compatible", server)))

    verdict = client.generate_structured("Review this", Verdict)

    # Nothing scripted: the server builds a minimal valid object from the schema in the prompt.
    assert verdict == Verdict(approved=False, score=0, reasons=[])
    assert "response_format" not in server.requests[-1].json
    assert len(server.requests) == 3


def test_openai_json_schema_mode_is_not_downgraded(server, make_client, entry, settings_for):
    server.reject = {"json_schema"}
    client = make_client(settings_for(entry("openai", server)))

    with pytest.raises(LLMRequestError, match="400"):
        client.generate_structured("Review this", Verdict)
    assert len(server.requests) == 1


def test_anthropic_model_refusing_temperature_is_sent_none(server, make_client, entry, settings_for):
    server.reject = {"temperature"}
    client = make_client(settings_for(entry("anthropic", server)))

    assert client.generate("hi").text == "ok"
    assert client.generate("again").text == "ok"

    sent = ["temperature" in r.json for r in server.requests]
    assert sent == [True, False, False]


def test_anthropic_temperature_is_clamped_to_its_range(server, make_client, entry, settings_for):
    client = make_client(settings_for(entry("anthropic", server)))
    client.generate("hi", temperature=1.6)
    assert server.requests[0].json["temperature"] == 1.0


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_missing_usage_records_zero_tokens(kind, server, make_client, entry, settings_for, llm_rows):
    server.usage = False
    client = make_client(settings_for(entry(kind, server)))

    response = client.generate("hi")

    assert (response.text, response.tokens_in, response.tokens_out) == ("ok", 0, 0)
    [row] = llm_rows()
    assert (row["tokens_in"], row["tokens_out"], row["cost_usd"], row["error"]) == (0, 0, 0.0, None)


def test_message_lists_and_system_entries(server, make_client, entry, settings_for):
    client = make_client(settings_for(entry("anthropic", server)))
    client.generate([{"role": "system", "content": "S"}, {"role": "user", "content": "a"},
                     {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}], system="T")
    body = server.requests[0].json
    assert body["system"] == "T\n\nS"
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    with pytest.raises(ValueError, match="role"):
        client.generate([{"role": "tool", "content": "x"}])
