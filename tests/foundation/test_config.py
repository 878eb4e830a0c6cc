"""config.yaml: interpolation, precise errors with key path and line, live reload."""

from __future__ import annotations

import textwrap

import pytest

from ai_agents.config import ConfigWatcher, LiveConfig, load_config, parse_config_text
from ai_agents.config.live import changed_keys
from ai_agents.errors import ConfigError


def test_shipped_config_is_valid_and_reads_key_from_env(monkeypatch):
    settings = load_config("config.yaml", env={"OPENAI_API_KEY": "sk-" + "test-fake-key-000000000000"})
    assert settings.llm.api_key is not None
    assert settings.llm.api_key.get_secret_value() == "sk-" + "test-fake-key-000000000000"
    assert "sk-test" not in repr(settings) and "sk-test" not in str(settings.llm.api_key)
    assert settings.memory.database_path.is_absolute()


def test_interpolation_default_and_unset():
    text = textwrap.dedent("""
        llm:
          api_key: ${MISSING_KEY}
          model: ${MODEL:-gpt-4o}
          base_url: http://${HOST:-localhost}:8080/v1
        company:
          name: ${COMPANY}
    """)
    s = parse_config_text(text, env={"COMPANY": "Acme"})
    assert s.llm.api_key is None
    assert s.llm.model == "gpt-4o"
    assert s.llm.base_url == "http://localhost:8080/v1"
    assert s.company.name == "Acme"


def test_unknown_key_named_with_path_and_line():
    text = "company:\n  name: x\norchestrator:\n  check_interval: 5\n  chek_interval: 7\n"
    with pytest.raises(ConfigError) as err:
        parse_config_text(text)
    assert err.value.problems == ["orchestrator.chek_interval: unknown key (config.yaml line 5)"]


def test_bad_value_and_wrong_type_reported_together():
    text = "orchestrator:\n  check_interval: 0\nagents:\n  developer:\n    workers: many\n"
    with pytest.raises(ConfigError) as err:
        parse_config_text(text)
    problems = err.value.problems
    assert "orchestrator.check_interval: must be greater than 0 (config.yaml line 2)" in problems
    assert any(p.startswith("agents.developer.workers:") and p.endswith("(config.yaml line 5)") for p in problems)


def test_invalid_yaml_has_line():
    with pytest.raises(ConfigError) as err:
        parse_config_text("company:\n  name: [unclosed\n  mission: x\n")
    assert "line" in str(err.value)


def test_changed_keys_lists_leaves():
    assert changed_keys({"a": {"b": 1, "c": 2}, "d": 3}, {"a": {"b": 1, "c": 5}, "d": 4}) == ["a.c", "d"]


def test_live_reload_accepted_then_rejected(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("paused: false\norchestrator:\n  check_interval: 30\n")
    live = LiveConfig(load_config(path), path)
    seen: list[list[str]] = []
    live.subscribe(lambda old, new, keys: seen.append(keys))
    watcher = ConfigWatcher(live, path)

    path.write_text("paused: true\norchestrator:\n  check_interval: 10\n")
    assert watcher.check() is True
    assert live.current.paused is True and live.current.orchestrator.check_interval == 10
    assert seen == [["orchestrator.check_interval", "paused"]]

    path.write_text("paused: maybe\norchestrator:\n  check_interval: -1\n")
    assert watcher.check() is False
    assert live.current.paused is True and live.current.orchestrator.check_interval == 10  # old config stays

    path.unlink()
    assert watcher.check() is False
    assert live.current.paused is True
