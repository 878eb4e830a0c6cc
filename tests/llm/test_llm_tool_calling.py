"""Native tool calling through the real SDKs against the fake server, and the scripted provider."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from ai_agents.config.models import ProviderConfig
from ai_agents.llm.base import ProviderRequest
from ai_agents.llm.providers.scripted import ScriptedProvider
from ai_agents.llm.script import Script
from ai_agents.llm.tools import ToolSpec, ToolTurn


class ReadArgs(BaseModel):
    path: str
    start: int = 1


READ = ToolSpec.from_model("read_file", "Read a file by line range.", ReadArgs)


@pytest.mark.parametrize("kind", ["openai", "anthropic", "openai_compatible"])
def test_tool_call_round_trip(kind, server, make_client, entry, settings_for, llm_rows):
    server.enqueue({"text": "Let me look.", "tool_calls": [{"name": "read_file", "arguments": {"path": "a.py"}}]})
    server.enqueue("done: a.py defines f")
    client = make_client(settings_for(entry(kind, server)))

    turns = [ToolTurn(role="user", text="What does a.py define?")]
    first = client.run_tools(turns, [READ], system="You are careful.", agent="developer", task_id="t-9")

    assert [(c.name, c.arguments) for c in first.tool_calls] == [("read_file", {"path": "a.py"})]
    assert first.tokens_in > 0 and first.tokens_out > 0
    call = first.tool_calls[0]
    turns += [ToolTurn(role="assistant", text=first.text, tool_calls=first.tool_calls),
              ToolTurn(role="tool", call_id=call.id, tool_name=call.name, text="1: def f(): pass")]
    second = client.run_tools(turns, [READ], system="You are careful.", agent="developer", task_id="t-9")

    assert second.text == "done: a.py defines f" and second.tool_calls == []
    # The second request carried the call and its result in the vendor's own wire shape.
    body = server.requests[1].json
    if kind == "anthropic":
        assert body["tools"][0]["input_schema"]["required"] == ["path"]
        assistant, result = body["messages"][1], body["messages"][2]
        assert assistant["content"][-1] == {"type": "tool_use", "id": call.id, "name": "read_file",
                                            "input": {"path": "a.py"}}
        assert result["content"][0]["type"] == "tool_result" and result["content"][0]["tool_use_id"] == call.id
    else:
        assert body["tools"][0]["function"]["name"] == "read_file" and "tool_choice" not in body
        assistant, result = body["messages"][2], body["messages"][3]
        assert assistant["tool_calls"][0]["id"] == call.id
        assert result == {"role": "tool", "tool_call_id": call.id, "content": "1: def f(): pass"}
    # Usage and cost recorded per call, as for every other call.
    assert [(r["agent"], r["task_id"], r["error"]) for r in llm_rows()] == [("developer", "t-9", None)] * 2
    assert all(r["tokens_in"] > 0 for r in llm_rows())


def test_unreadable_arguments_are_reported_not_raised(server, make_client, entry, settings_for):
    server.enqueue({"tool_calls": [{"name": "read_file", "arguments": "{not json"}]})
    client = make_client(settings_for(entry("openai", server)))

    reply = client.run_tools([ToolTurn(role="user", text="go")], [READ])

    [call] = reply.tool_calls
    assert call.arguments == {} and "not valid JSON" in (call.arguments_error or "")


def test_scripted_provider_answers_tool_requests_in_order():
    script = Script.from_data({"rules": [
        {"when": {"schema": "tools", "last_contains": "ERROR"}, "reply": "giving up"},
        {"when": {"schema": "tools", "agent": "developer"},
         "replies": [{"tool_calls": [{"name": "read_file", "arguments": {"path": "x.py"}}]}, "finished"]},
    ]})
    config = ProviderConfig(provider="scripted", model="m", script_path="unused.yaml")
    provider = ScriptedProvider(config, script=script)

    def ask(last: str) -> tuple[str, list[str]]:
        request = ProviderRequest(messages=[], model="m", temperature=0, max_tokens=100, agent="developer",
                                  tools=(READ,), turns=(ToolTurn(role="user", text=last),))
        reply = provider.complete(request)
        return reply.text, [c.name for c in reply.tool_calls]

    assert ask("start") == ("", ["read_file"])
    assert ask("ERROR: no such file") == ("giving up", [])
    assert ask("next") == ("finished", [])
