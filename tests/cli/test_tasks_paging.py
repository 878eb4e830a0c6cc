"""``tasks --limit/--offset`` pages through the task table and says when it shows only part of it."""

from __future__ import annotations

import json

import pytest

from ai_agents.cli import main
from ai_agents.config import load_config
from ai_agents.domain import TaskStatus
from ai_agents.memory import Database, TaskStore


@pytest.fixture
def seven_tasks(write_config):
    config = write_config(None)
    db = Database(load_config(config).memory.database_path)
    tasks = TaskStore(db)
    created = [tasks.create("code", f"Task number {i}") for i in range(7)]
    tasks.transition(created[6].id, TaskStatus.CANCELLED)
    yield config, [t.id for t in created]
    db.close()


def run(capsys, config, *args: str) -> tuple[int, str, str]:
    code = main(["tasks", "--config", str(config), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_pages_cover_every_task_once_and_say_they_are_pages(seven_tasks, capsys):
    config, ids = seven_tasks
    seen: list[str] = []
    for offset in (0, 3, 6):
        code, out, err = run(capsys, config, "--json", "--limit", "3", "--offset", str(offset))
        assert code == 0
        seen += [r["id"] for r in json.loads(out)]
        assert f"showing tasks {offset + 1}-{min(offset + 3, 7)} of 7" in err
    assert seen == ids  # oldest first, no task twice, none left out
    assert "next page: --offset 3" in run(capsys, config, "--json", "--limit", "3")[2]
    assert "next page" not in run(capsys, config, "--json", "--limit", "3", "--offset", "6")[2]

    code, out, _ = run(capsys, config, "--limit", "2", "--offset", "5")
    assert "queued (1)" in out and "cancelled (1)" in out
    assert out.splitlines()[-1] == "showing tasks 6-7 of 7 (oldest first, --limit 2)"


def test_everything_shown_means_no_note_and_status_filters_count(seven_tasks, capsys):
    config, _ = seven_tasks
    code, out, err = run(capsys, config, "--json")
    assert code == 0 and len(json.loads(out)) == 7 and err == ""
    _, out, _ = run(capsys, config, "--status", "queued", "--limit", "4")
    assert out.splitlines()[-1] == "showing tasks 1-4 of 6 (oldest first, --limit 4); next page: --offset 4"
    _, out, _ = run(capsys, config, "--offset", "50")
    assert out.strip() == "no tasks at offset 50 (there are 7)"


@pytest.mark.parametrize("bad", [["--limit", "0"], ["--offset", "-1"], ["--limit", "many"]])
def test_bad_paging_values_are_usage_errors(seven_tasks, capsys, bad):
    config, _ = seven_tasks
    with pytest.raises(SystemExit) as exit_info:
        run(capsys, config, *bad)
    assert exit_info.value.code == 2
    assert "Traceback" not in capsys.readouterr().err
