"""The script rule engine, the scripted provider, and the fake server answering from a script."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import openai
import pytest
import yaml
from pydantic import BaseModel

from ai_agents.errors import ConfigError, LLMRequestError
from ai_agents.llm.script import Script, ScriptNoMatchError

REPO = Path(__file__).resolve().parents[2]


class Plan(BaseModel):
    title: str
    steps: list[str]


SCRIPT = {
    "rules": [
        {"when": {"schema": "Plan", "agent": "ceo", "contains": "mission"}, "times": 1,
         "reply": {"title": "first", "steps": ["a"]}},
        {"when": {"schema": "Plan", "agent": "ceo"}, "reply": {"title": "later", "steps": []}},
        {"when": {"contains": "review", "not_contains": "skip"}, "replies": ["v1 fails", "v2 passes"]},
        {"when": {"schema": "*"}, "reply": "catch-all"},
    ]
}


def script() -> Script:
    return Script.from_data(SCRIPT, "test.yaml")


def test_rules_match_in_order_with_times_and_replies():
    s = script()
    assert s.answer(schema="Plan", texts=["our mission"], agent="ceo") == {"title": "first", "steps": ["a"]}
    assert s.answer(schema="Plan", texts=["our mission"], agent="ceo") == {"title": "later", "steps": []}
    assert [s.answer(schema=None, texts=["please review"]) for _ in range(3)] == ["v1 fails", "v2 passes",
                                                                                    "v2 passes"]
    assert s.answer(schema=None, texts=["review", "skip it"]) == "catch-all"
    assert s.answer(schema="Plan", texts=["x"], agent="qa") == "catch-all"
    s.reset()
    assert s.answer(schema="Plan", texts=["mission"], agent="ceo")["title"] == "first"


def test_agent_condition_ignored_when_the_agent_is_unknown():
    found, reply = script().match(schema="Plan", texts=["mission"], agent=None, agent_known=False)
    assert found and reply["title"] == "first"


def test_no_match_names_schema_and_agent():
    s = Script.from_data({"rules": [{"when": {"schema": "Plan"}, "reply": {}}]}, "s.yaml")
    with pytest.raises(ScriptNoMatchError, match=r"s\.yaml.*schema=Review.*agent=qa") as info:
        s.answer(schema="Review", texts=[], agent="qa")
    assert isinstance(info.value, LLMRequestError)
    with pytest.raises(ScriptNoMatchError, match="schema=text"):
        s.answer(schema=None, texts=["hi"])


@pytest.mark.parametrize("data, problem", [
    ({"rule": []}, "rules:"),
    ({"rules": [{"when": {"schema": "X"}}]}, "exactly one of"),
    ({"rules": [{"when": {"colour": "red"}, "reply": "x"}]}, "may only hold"),
    ({"rules": [{"reply": "x", "times": 0}]}, "positive integer"),
    ({"rules": [{"replies": []}]}, "non-empty"),
])
def test_bad_scripts_are_config_errors(data, problem):
    with pytest.raises(ConfigError, match=problem):
        Script.from_data(data, "bad.yaml")


def test_script_is_safe_across_threads():
    s = Script.from_data({"rules": [{"when": {}, "times": 50, "reply": "limited"}, {"when": {}, "reply": "rest"}]})
    answers: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(20):
            a = s.answer(schema=None, texts=[])
            with lock:
                answers.append(a)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers.count("limited") == 50 and answers.count("rest") == 110


def test_scripted_provider_through_the_client(tmp_path, make_client, settings_for, llm_rows):
    path = tmp_path / "script.yaml"
    path.write_text(yaml.safe_dump(SCRIPT))
    client = make_client(settings_for({"provider": "scripted", "model": "demo-script", "script_path": str(path)}))

    plan = client.generate_structured("state the mission", Plan, agent="ceo")
    text = client.generate("please review this", agent="developer")

    assert plan == Plan(title="first", steps=["a"])
    assert (text.text, text.provider, text.model) == ("v1 fails", "scripted", "demo-script")
    rows = llm_rows()
    assert [r["agent"] for r in rows] == ["ceo", "developer"] and all(r["tokens_in"] > 0 for r in rows)
    narrow = tmp_path / "narrow.yaml"
    narrow.write_text(yaml.safe_dump({"rules": [{"when": {"schema": "Plan", "agent": "ceo"}, "reply": {}}]}))
    client = make_client(settings_for({"provider": "scripted", "script_path": str(narrow)}))
    with pytest.raises(LLMRequestError, match=r"no scripted rule.*schema=Plan.*agent=qa"):
        client.generate_structured("plan", Plan, agent="qa")  # the agent condition is honoured here


def test_script_file_json_and_errors(tmp_path):
    good = tmp_path / "s.json"
    good.write_text(json.dumps(SCRIPT))
    assert len(Script.from_file(good).rules) == 4
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        Script.from_file(broken)
    with pytest.raises(ConfigError, match="cannot be read"):
        Script.from_file(tmp_path / "missing.yaml")


def test_fake_server_answers_from_the_script_by_schema_name(server, make_client, entry, settings_for):
    server.set_script(script())
    openai_client = make_client(settings_for(entry("openai", server)))
    anthropic_client = make_client(settings_for(entry("anthropic", server)))
    # The server cannot know the agent, so agent conditions are ignored there.
    assert openai_client.generate_structured("our mission", Plan) == Plan(title="first", steps=["a"])
    assert anthropic_client.generate_structured("our mission", Plan) == Plan(title="later", steps=[])
    assert openai_client.generate("review please").text == "v1 fails"
    assert anthropic_client.generate("review again").text == "v2 passes"
    assert anthropic_client.generate("hello").text == "catch-all"


def test_fake_server_cli_serves_a_script_from_another_process(tmp_path):
    path = tmp_path / "script.yaml"
    path.write_text(yaml.safe_dump(SCRIPT))
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.llm_server", "--port", "0", "--script", str(path)],
                            cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        sdk = openai.OpenAI(api_key="sk-test-fake-0000", base_url=base_url + "/v1", max_retries=0, timeout=5)
        answer = sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "review it"}])
        assert answer.choices[0].message.content == "v1 fails"
        sdk.close()
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
