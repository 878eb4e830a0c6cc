"""The command line through subprocesses: run, live reload, SIGTERM, check-config, submit, tasks, status."""

from __future__ import annotations

import json
import signal
import time

import yaml

from tests.conftest import FAKE_KEY, wait_for
from tests.daemon import Daemon, cli


def test_run_logs_json_heartbeats_reloads_rejects_and_stops_on_sigterm(fake_llm, write_config):
    config = write_config(fake_llm, {"llm": {"api_key": FAKE_KEY}})
    daemon = Daemon(config).start()
    try:
        daemon.wait_event("orchestrator_started")
        status = wait_for(lambda: json.loads(cli(config, "status", "--json").stdout)["daemon"].get("pid"),
                          message="heartbeat in the database")
        assert status == daemon.proc.pid

        data = yaml.safe_load(config.read_text())
        data["orchestrator"]["max_new_tasks"] = 1
        data["company"]["goals"] = ["A new goal"]
        config.write_text(yaml.safe_dump(data))
        started = time.monotonic()
        event = daemon.wait_event("config_reloaded", timeout=10)
        assert time.monotonic() - started < 5
        assert event["changed_keys"] == ["company.goals", "orchestrator.max_new_tasks"]

        config.write_text(config.read_text().replace("max_new_tasks: 1", "max_new_tasks: -4"))
        rejected = daemon.wait_event("config_rejected", timeout=10)
        assert any(e.startswith("orchestrator.max_new_tasks: must be greater than or equal to 0") for e in
                   rejected["errors"])
        assert rejected["alert"] is True
        time.sleep(1.5)
        assert daemon.proc.poll() is None  # a broken edit never stops the daemon

        daemon.signal(signal.SIGTERM)
        t0 = time.monotonic()
        assert daemon.wait(15) == 0
        assert time.monotonic() - t0 < 10
        events = daemon.events()  # every line parsed as JSON
        assert events[-1]["event"] == "daemon_stopped"
        assert all({"timestamp", "level", "logger", "event"} <= set(e) for e in events)
        assert FAKE_KEY not in daemon.stdout_path.read_text()
        assert FAKE_KEY not in config.parent.joinpath("data", "logs", "agents.log").read_text()
        config.write_text(yaml.safe_dump(data))
        health = cli(config, "health")
        assert health.returncode == 1 and "stopped" in health.stdout
    finally:
        daemon.stop()


def test_sigint_also_stops_cleanly(write_config):
    config = write_config(None)
    daemon = Daemon(config).start()
    try:
        daemon.wait_event("orchestrator_started")
        daemon.signal(signal.SIGINT)
        assert daemon.wait(15) == 0
    finally:
        daemon.stop()


def test_second_daemon_on_same_database_is_refused(write_config):
    config = write_config(None)
    first = Daemon(config).start()
    try:
        first.wait_event("orchestrator_started")
        second = cli(config, "run", timeout=30)
        assert second.returncode == 1
        assert "another daemon is already running" in second.stderr
    finally:
        first.signal(signal.SIGTERM)
        first.wait(15)


def test_check_config_reports_every_problem_with_lines(write_config, tmp_path):
    config = write_config(None)
    ok = cli(config, "check-config")
    assert ok.returncode == 0 and ": ok" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("orchestrator:\n  check_interval: 0\nllm:\n  provder: openai\n")
    result = cli(bad, "check-config")
    assert result.returncode == 2
    assert "orchestrator.check_interval: must be greater than 0 (bad.yaml line 2)" in result.stderr
    assert "llm.provder: unknown key (bad.yaml line 4)" in result.stderr
    assert "Traceback" not in result.stderr
    missing = cli(tmp_path / "nope.yaml", "check-config")
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_submit_tasks_and_status(write_config):
    config = write_config(None)
    out = cli(config, "submit", "Write a slug helper", "--type", "code", "--priority", "high")
    assert out.returncode == 0 and out.stdout.startswith("queued task ")
    cli(config, "submit", "Market survey\n\nWho needs slugs?", "--type", "analysis")
    rows = json.loads(cli(config, "tasks", "--json").stdout)
    assert [(r["title"], r["type"], r["priority"], r["status"]) for r in rows] == [
        ("Write a slug helper", "code", "high", "queued"), ("Market survey", "analysis", "medium", "queued")]
    assert "queued (2)" in cli(config, "tasks").stdout
    status = json.loads(cli(config, "status", "--json").stdout)
    assert status["tasks_by_status"] == {"queued": 2}
    assert status["daemon"]["heartbeat_age_seconds"] is None
    assert "never ran" in cli(config, "status").stdout
    usage = cli(config, "submit", "x", "--type", "nonsense")
    assert usage.returncode == 2 and "invalid choice" in usage.stderr


def test_approvals_approve_and_reject_from_the_command_line(write_config):
    from ai_agents.config import load_config
    from ai_agents.memory import Database, TaskStore

    config = write_config(None)
    tasks = TaskStore(Database(load_config(config).memory.database_path))
    first, second = tasks.create("code", "Gated one"), tasks.create("code", "Gated two")
    for t in (first, second):
        tasks.request_approval(t.id, "deploy", {"merge_commit": "abc1234"}, {"stage": "release"})
    listing = cli(config, "approvals")
    assert listing.returncode == 0 and first.id in listing.stdout and second.id in listing.stdout
    ok = cli(config, "approve", first.id)
    assert ok.returncode == 0 and f"approved deploy for task {first.id}" in ok.stdout
    no = cli(config, "reject", second.id)
    assert no.returncode == 0 and "rejected deploy" in no.stdout
    assert tasks.approval_status(first.id, "deploy") == "approved"
    assert tasks.approval_status(second.id, "deploy") == "rejected"
    assert {tasks.get(first.id).status.value, tasks.get(second.id).status.value} == {"queued"}
    again = cli(config, "approve", first.id)
    assert again.returncode == 1 and "no pending approval" in again.stderr
    assert "no pending approvals" in cli(config, "approvals").stdout
    assert "decided by cli" in cli(config, "approvals", "--all").stdout
