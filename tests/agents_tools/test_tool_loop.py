"""The bounded loop through the real SDKs against the fake server, with a real SQLite store:
turn and stage caps, the context budget, edits retried after a clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ai_agents.agents.tools.loop import LimitGuard, ToolLoop
from ai_agents.agents.tools.registry import ToolRegistry
from ai_agents.agents.tools.view import CodeView, WritePolicy
from ai_agents.config.live import LiveConfig
from ai_agents.config.models import Settings
from ai_agents.domain import Role
from ai_agents.errors import AgentLimitReached, AttemptTurnsUsed
from ai_agents.llm import LLMClient, RetryPolicy
from ai_agents.memory import Database, MemoryStore
from tests.agents_tools.support import call
from tests.conftest import FAKE_KEY
from tests.fakes.llm_server import FakeLLMServer


def settings(server: FakeLLMServer, kind: str, **tools: object) -> Settings:
    base = server.base_url if kind == "anthropic" else server.openai_base_url
    return Settings.model_validate({
        "llm": {"provider": kind, "model": "claude-haiku-4-5" if kind == "anthropic" else "gpt-4o-mini",
                "api_key": FAKE_KEY, "base_url": base, "timeout": 5, "max_retries": 0,
                "requests_per_minute": 100000, "cache": {"enabled": False}},
        "agents": {"tools": {"enabled": True, **tools}}, "logging": {"file": None}})


@pytest.fixture
def memory(tmp_path: Path):
    db = Database(tmp_path / "agents.db")
    yield MemoryStore(db)
    db.close()


def no_tests(changed: dict[str, str], paths: list[str]):
    raise AssertionError("this loop must not run tests")


def make_loop(server: FakeLLMServer, memory: MemoryStore, files: dict[str, str], *, kind: str = "openai",
              role: Role = Role.DEVELOPER, **tools: object) -> tuple[ToolLoop, LLMClient]:
    live = LiveConfig(settings(server, kind, **tools))
    client = LLMClient.from_config(live, memory, retry=RetryPolicy(base=0.01, sleep=lambda s: None))
    view = CodeView(files, WritePolicy(role))
    registry = ToolRegistry(view, live.current.agents.tools, run_tests=no_tests, task_words="discount")
    loop = ToolLoop(client, LimitGuard(live, memory), role=role, system="You are a senior Python developer.",
                    registry=registry, task_id="t-1")
    return loop, client


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_edit_fails_with_reason_then_succeeds(kind, memory):
    files = {"m.py": "def a():\n    return 1\n\n\ndef b():\n    return 1\n"}
    with FakeLLMServer() as server:
        for reply in [call("edit_file", path="m.py", old_text="    return 1", new_text="    return 2"),
                      call("edit_file", path="m.py", old_text="def b():\n    return 1", new_text="def b():\n    "
                           "return 2"),
                      call("finish", summary="b returns 2")]:
            server.enqueue(reply)
        loop, client = make_loop(server, memory, files, kind=kind)
        outcome = loop.run("Make b return 2.")
        client.close()
        sent = json.dumps(server.requests[1].json)
    assert "old text matches 2 places in m.py (lines 2, 6)" in sent  # the model was told why
    assert outcome.changed == {"m.py": "def a():\n    return 1\n\n\ndef b():\n    return 2\n"}
    assert outcome.turns == 3 and outcome.tool_calls == 3 and outcome.finish.summary == "b returns 2"
    assert memory.task_usage("t-1", "developer")["turns"] == 3


def test_attempt_turn_cap(memory):
    with FakeLLMServer() as server:
        for _ in range(5):
            server.enqueue(call("find_files", pattern="**/*.py"))
        loop, client = make_loop(server, memory, {"m.py": "x = 1\n"}, max_turns_per_attempt=3)
        with pytest.raises(AttemptTurnsUsed, match="used all 3 turns of one attempt"):
            loop.run("Look around forever.")
        client.close()
        assert len(server.requests) == 3


def test_stage_caps_are_enforced_before_the_call(memory):
    with FakeLLMServer() as server:
        for _ in range(6):
            server.enqueue(call("find_files", pattern="**/*.py"))
        loop, client = make_loop(server, memory, {"m.py": "x = 1\n"}, per_stage={"max_turns": 4})
        with pytest.raises(AgentLimitReached, match=r"developer stage reached its limit \(4 model calls of "
                                                    r"agents.tools.per_stage.max_turns 4\)"):
            loop.run("Look around.")
        assert len(server.requests) == 4  # the fifth call was never made
        # Tokens too, and the whole task's cap counts every agent's calls (from llm_calls).
        memory.record_llm_call(agent="qa", task_id="t-1", provider="openai", model="m", tokens_in=10_000)
        loop2, client2 = make_loop(server, memory, {"m.py": "x = 1\n"}, per_task={"max_tokens": 5000})
        with pytest.raises(AgentLimitReached, match="the task reached its limit"):
            loop2.run("Look around.")
        assert len(server.requests) == 4
        client.close()
        client2.close()


def test_conversation_longer_than_the_context_budget(memory):
    big = {f"pkg/mod{i}.py": "".join(f"def f{i}_{n}(x):\n    return x + {n}\n\n" for n in range(120))
           for i in range(12)}
    budget = 4000
    with FakeLLMServer() as server:
        for i in range(12):
            server.enqueue(call("read_file", path=f"pkg/mod{i}.py", start_line=1, end_line=120))
        server.enqueue(call("finish", summary="read everything"))
        loop, client = make_loop(server, memory, big, context_tokens=budget, read_max_lines=120)
        outcome = loop.run("TASK-MARKER: read every module.")
        client.close()
        requests = [r.json for r in server.requests]
    assert outcome.finish.summary == "read everything" and len(requests) == 13
    for body in requests:
        text = "".join(str(m.get("content") or "") for m in body["messages"]) + json.dumps(body["tools"])
        assert len(text) / 4 <= budget  # what the prompt holds, never past the budget
        assert "TASK-MARKER" in body["messages"][1]["content"]  # the task is always kept
    last = requests[-1]["messages"]
    assert "def f11_0(x):" in last[-1]["content"]  # the newest result verbatim
    assert "earlier turns were dropped" in last[1]["content"] or any(
        "[older result of read_file" in str(m.get("content")) for m in last)
    assert outcome.largest_prompt_tokens <= budget
    # Without the budget the same conversation would have grown far past it (the server's own count).
    assert max(r["tokens_in"] for r in memory.db.query("SELECT tokens_in FROM llm_calls")) <= budget
    assert sum(len(t) for t in big.values()) / 4 > 2.5 * budget
