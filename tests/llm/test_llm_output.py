"""Structured answers that are not JSON or do not match: one repair round, then LLMOutputError."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

from ai_agents.errors import LLMOutputError
from ai_agents.llm.structured import parse_answer, schema_from_instruction, strip_fences, with_instruction


class Estimate(BaseModel):
    hours: float = Field(gt=0)
    risk: str


GOOD = {"hours": 3.5, "risk": "low"}


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_invalid_json_then_valid_after_repair(kind, server, make_client, entry, settings_for, llm_rows):
    server.enqueue("Sure! Here is the estimate: hours=3")
    server.enqueue(GOOD)
    client = make_client(settings_for(entry(kind, server)))

    assert client.generate_structured("Estimate the work", Estimate) == Estimate(**GOOD)

    assert len(server.requests) == 2
    repair = server.requests[1].json["messages"]
    assert repair[-2] == {"role": "assistant", "content": "Sure! Here is the estimate: hours=3"}
    assert repair[-1]["role"] == "user"
    assert "not valid JSON" in repair[-1]["content"] and "Estimate" in repair[-1]["content"]
    assert len(llm_rows()) == 2


def test_schema_violation_is_repaired_with_the_validation_errors(server, make_client, entry, settings_for):
    server.enqueue({"hours": -1, "risk": "low"})
    server.enqueue(GOOD)
    client = make_client(settings_for(entry("openai", server)))

    assert client.generate_structured("Estimate", Estimate).hours == 3.5
    feedback = server.requests[1].json["messages"][-1]["content"]
    assert "hours" in feedback and "greater than 0" in feedback


def test_two_bad_answers_raise_output_error_naming_schema_and_answer(server, make_client, entry, settings_for):
    bad = "I cannot answer in JSON today, " + "x" * 400
    server.enqueue("not json at all")
    server.enqueue(bad)
    client = make_client(settings_for(entry("anthropic", server)))

    with pytest.raises(LLMOutputError) as info:
        client.generate_structured("Estimate", Estimate)

    message = str(info.value)
    assert "Estimate" in message and "repair" in message
    assert repr(bad[:200]) in message and bad[:201] not in message
    assert len(server.requests) == 2


def test_fenced_json_is_accepted_without_repair(server, make_client, entry, settings_for):
    server.enqueue('```json\n{"hours": 2, "risk": "medium"}\n```')
    client = make_client(settings_for(entry("openai", server)))
    assert client.generate_structured("Estimate", Estimate) == Estimate(hours=2, risk="medium")
    assert len(server.requests) == 1


@pytest.mark.parametrize("fault", ["invalid_json", "schema_violation"])  # "empty": see test_llm_fault_matrix
def test_server_faults_on_answers_are_repaired(fault, server, make_client, entry, settings_for):
    server.fault_rate(1.0, kinds=[fault])
    client = make_client(settings_for(entry("anthropic", server)))
    with pytest.raises(LLMOutputError):
        client.generate_structured("Estimate", Estimate)
    server.fault_rate(0.0)
    server.fail_next(0)
    server.enqueue(GOOD)
    assert client.generate_structured("Estimate again", Estimate) == Estimate(**GOOD)


def test_parse_helpers():
    assert strip_fences("```\n{}\n```") == "{}"
    assert strip_fences('  {"a": 1}  ') == '{"a": 1}'
    value, problem = parse_answer("", Estimate)
    assert value is None and "empty" in problem
    value, problem = parse_answer('{"hours": 1}', Estimate)
    assert value is None and "risk" in problem
    text = with_instruction("Be brief.", "Estimate", Estimate.model_json_schema())
    assert text.startswith("Be brief.")
    assert schema_from_instruction(text) == ("Estimate", Estimate.model_json_schema())
