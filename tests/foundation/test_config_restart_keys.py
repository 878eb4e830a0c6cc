"""An edited config.yaml applies its live keys only: a key outside LIVE_KEYS keeps the value in
force, is logged as ``config_restart_required`` and shown by ``status`` until a restart."""

from __future__ import annotations

import argparse

import yaml
from structlog.testing import capture_logs

from ai_agents.commands import cmd_status
from ai_agents.config import ConfigWatcher, LiveConfig, load_config
from ai_agents.config.live import live_prefix


def edit(path, **changes) -> None:
    data = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = data
        for name in parents:
            node = node.setdefault(name, {})
        node[last] = value
    path.write_text(yaml.safe_dump(data))


def test_live_prefix_follows_live_keys():
    assert live_prefix("company.goals") == ("company",)
    assert live_prefix("llm.prices.gpt-4o.input") == ("llm", "prices")
    assert live_prefix("agents.cfo.temperature") == ("agents", "cfo", "temperature")
    for key in ("git.branch", "llm.model", "llm.fallback", "agents.cfo.workers", "file_system.workspace_path",
                "orchestrator.heartbeat_interval"):
        assert live_prefix(key) is None, key


def test_git_branch_edit_waits_for_a_restart_while_a_live_key_is_applied(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("company:\n  name: Old Co\ngit:\n  branch: main\nllm:\n  model: gpt-4o-mini\n")
    live = LiveConfig(load_config(path), path)
    seen: list[list[str]] = []
    live.subscribe(lambda old, new, keys: seen.append(keys))
    watcher = ConfigWatcher(live, path)

    edit(path, git__branch="develop", company__name="New Co", llm__model="gpt-5", llm__temperature=0.1)
    with capture_logs() as logs:
        assert watcher.check() is True

    assert live.current.company.name == "New Co" and live.current.llm.temperature == 0.1  # live: applied
    assert live.current.git.branch == "main" and live.current.llm.model == "gpt-4o-mini"  # restart: not applied
    assert seen == [["company.name", "llm.temperature"]]
    assert live.restart_required == ["git.branch", "llm.model"]
    reloaded = next(e for e in logs if e["event"] == "config_reloaded")
    assert reloaded["changed_keys"] == ["company.name", "llm.temperature"]
    waiting = next(e for e in logs if e["event"] == "config_restart_required")
    assert waiting["keys"] == ["git.branch", "llm.model"] and waiting["log_level"] == "warning"

    # Reverting the branch edit: only the model still waits.
    edit(path, git__branch="main")
    watcher.check()
    assert live.restart_required == ["llm.model"] and live.current.git.branch == "main"
    assert seen == [["company.name", "llm.temperature"]]  # nothing new was applied

    # A restart reads the file whole.
    restarted = LiveConfig(load_config(path), path)
    assert restarted.current.llm.model == "gpt-5" and restarted.restart_required == []


def test_status_shows_keys_waiting_for_a_restart(fake_llm, build, capsys):
    app = build(fake_llm, start=False)
    path = app.live.path
    edit(path, git__branch="release", company__name="Renamed Co")
    assert app.orchestrator.watcher.check() is True
    assert app.workspace.main_branch == "main"  # the branch the git manager holds, still
    assert app.live.current.company.name == "Renamed Co"
    app.orchestrator.heartbeat()

    assert cmd_status(argparse.Namespace(config=path, json=False)) == 0
    [line] = [x for x in capsys.readouterr().out.splitlines() if x.startswith("RESTART:")]
    assert line.endswith(": git.branch")
