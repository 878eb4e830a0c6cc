"""The machine misbehaves while the daemon runs: a full disk, an unreachable git remote, no test
framework, config.yaml deleted. Each ends with a clear logged reason, nothing lost, and the
daemon still running and doing work afterwards.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ai_agents.llm.script import Script
from tests.chaos.driver import Running, start, stop
from tests.chaos.invariants import all_problems, git, task_git_summary
from tests.chaos.scenario import (
    all_final,
    chaos_config,
    chaos_script,
    helper_names,
    helper_rules,
    helper_test_code,
    submit_code_tasks,
    task_rows,
    workspace,
)
from tests.conftest import wait_for
from tests.pipeline.conftest import story_rules


def row(config: Path, task_id: str) -> dict[str, Any]:
    return next(r for r in task_rows(config) if r["id"] == task_id)


def settle(running: Running, config: Path, ids: list[str], timeout: float = 40) -> None:
    def final() -> bool:
        running.assert_alive()
        return all_final(config, ids)
    wait_for(final, timeout=timeout, interval=0.1, message=f"tasks {ids} final")


def finish(running: Running, config: Path, completed: list[str]) -> None:
    """The daemon is still up; stop it cleanly and check the end state."""
    running.assert_alive()
    code, _ = stop(running, 5)
    assert code == 0
    problems = all_problems(config, completed)
    assert not problems, "\n".join(problems)
    assert all(row(config, t)["status"] == "completed" for t in completed)


def escalation_reason(running: Running, task_id: str) -> str:
    events = [e for e in running.tail.named("task_escalated") if e.get("task_id") == task_id]
    assert events, f"task {task_id} was never escalated"
    return events[-1]["error"]


# --- disk full ---------------------------------------------------------------------------------
@contextlib.contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[None]:
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip() or 'not root'})")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(directory: Path, leave: int = 0) -> Path:
    """Write until the file system says ENOSPC, then give back ``leave`` bytes; return the filler."""
    filler = directory / "filler"
    with open(filler, "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
        fh.truncate(max(0, fh.tell() - leave))
    return filler


@pytest.mark.slow  # a long end-to-end run: .ci/run runs it in its second step (--runslow -m slow)
@pytest.mark.timeout(90)
def test_disk_full_in_the_workspace(fake_llm, write_config, tmp_path):
    """Nearly full: the file-system manager's write fails (QA's 120 KB test file). Full: git's
    first write fails (the task branch). Then space comes back and work goes on."""
    names = helper_names(4)
    rules = helper_rules(names)
    big = rules[2]["reply"]  # h02's TestSuite: a 120 KB test file cannot fit in the 64 KB left
    big["test_code"] = helper_test_code(names[1]) + "\n" + "# padding\n" * 12_000
    fake_llm.set_script(Script.from_data({"rules": rules + story_rules()}))
    config = write_config(fake_llm, chaos_config())
    ws = workspace(config)
    with small_tmpfs(ws, "4m"):
        first = submit_code_tasks(config, names[:1])[names[0]]
        running = start(config)
        try:
            settle(running, config, [first])
            # .git/ is never cleaned by the daemon (an untracked filler in the tree would be).
            filler = fill(ws / ".git", leave=64 * 1024)
            nearly = submit_code_tasks(config, [names[1]])[names[1]]
            settle(running, config, [nearly])
            filler.unlink()
            filler = fill(ws / ".git")
            full = submit_code_tasks(config, [names[2]])[names[2]]
            settle(running, config, [full])
            filler.unlink()  # space again: the daemon carries on by itself
            after = submit_code_tasks(config, [names[3]])[names[3]]
            settle(running, config, [after])
            reasons = {t: escalation_reason(running, t) for t in (nearly, full)}
            finish(running, config, [first, after])
        finally:
            running.daemon.stop()
        committed = {t: task_git_summary(ws, t) for t in (nearly, full)}
    failed = {t: row(config, t) for t in (nearly, full)}
    for t, r in failed.items():
        print(f"\ndisk full: task {t} {r['status']}: {r['error'][:400]}")
    # The task's own files live in its worktree under data/ (issue 13), not on the full disk: what
    # fails first is git writing into the repository's .git there (the merge queue's worktree index).
    assert any(w in reasons[nearly] for w in ("No space left on device", "Out of diskspace", "couldn't write"))
    assert "couldn't write" in reasons[full] or "No space left on device" in reasons[full]  # git's own words
    for t, r in failed.items():
        assert r["status"] == "failed" and reasons[t] in r["error"]
        assert max(committed[t].values()) == 0  # nothing committed for it


# --- git remote unreachable ---------------------------------------------------------------------
@pytest.mark.slow  # a long end-to-end run: .ci/run runs it in its second step (--runslow -m slow)
@pytest.mark.timeout(90)
def test_git_remote_unreachable_then_back(fake_llm, write_config, tmp_path):
    names = helper_names(3)
    fake_llm.set_script(chaos_script(names))
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    config = write_config(fake_llm, chaos_config(max_task_attempts=2, git={
        "repository_url": str(remote), "auto_push": True, "push_retries": 1}))
    first = submit_code_tasks(config, names[:1])[names[0]]
    running = start(config)
    try:
        settle(running, config, [first])
        ws = workspace(config)
        assert git(remote, "rev-parse", "main") == git(ws, "rev-parse", "main")  # pushed
        gone = remote.rename(tmp_path / "remote-gone.git")
        during = submit_code_tasks(config, [names[1]])[names[1]]
        settle(running, config, [during])
        reason = escalation_reason(running, during)
        gone.rename(remote)  # the remote is back
        after = submit_code_tasks(config, [names[2]])[names[2]]
        settle(running, config, [after])
        finish(running, config, [first, after])
    finally:
        running.daemon.stop()
    failed = row(config, during)
    print(f"\nremote unreachable: task {during} {failed['status']}: {failed['error'][:300]}")
    assert "push of main to origin failed after 2 attempts" in reason and "push" in failed["error"]
    assert failed["status"] == "failed"
    # Nothing lost: the failed task's code was merged locally and went out with the next push.
    assert task_git_summary(ws, during) == {"qa": 1, "developer": 1, "merge": 1}
    assert git(remote, "rev-parse", "main") == git(ws, "rev-parse", "main")
    assert task_git_summary(remote, during) == {"qa": 1, "developer": 1, "merge": 1}


# --- no test framework -------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_test_framework_missing(fake_llm, write_config):
    names = helper_names(1)
    fake_llm.set_script(chaos_script(names))
    if shutil.which("jest"):
        pytest.skip("jest is installed here")
    config = write_config(fake_llm, chaos_config(testing={"framework": "jest"}))
    task = submit_code_tasks(config, names)[names[0]]
    running = start(config)
    try:
        settle(running, config, [task])
        reason = escalation_reason(running, task)
        running.assert_alive()
        code, _ = stop(running, 5)
    finally:
        running.daemon.stop()
    failed = row(config, task)
    print(f"\nno test framework: task {task} {failed['status']}: {failed['error'][:300]}")
    assert code == 0
    assert "the test framework could not run" in reason and "jest" in reason
    assert failed["status"] == "failed" and "jest" in failed["error"]
    assert max(task_git_summary(workspace(config), task).values()) == 0  # nothing committed or merged
    assert not all_problems(config, [task])


# --- config.yaml deleted, replaced by a directory, unreadable --------------------------------------
@pytest.mark.slow  # a long end-to-end run: .ci/run runs it in its second step (--runslow -m slow)
@pytest.mark.timeout(60)
def test_config_deleted_or_unreadable_while_running(fake_llm, write_config):
    names = helper_names(2)
    fake_llm.set_script(chaos_script(names))
    config = write_config(fake_llm, chaos_config())
    original = config.read_text()
    running = start(config)
    try:
        config.unlink()
        missing = running.wait_event("config_rejected", timeout=10)
        assert missing["errors"] == ["config file is missing or unreadable"]
        # Nothing stops: the config in force keeps the daemon working.
        first = submit_code_tasks(config, names[:1])[names[0]]
        settle(running, config, [first])

        config.mkdir()  # a directory where the file was
        unreadable = running.wait_event("config_rejected", timeout=10, errors=[f"config file {config} cannot be "
                                                                              f"read: [Errno 21] Is a directory: "
                                                                              f"'{config}'"])
        config.rmdir()
        data = yaml.safe_load(original)
        data["company"]["goals"] = ["A restored goal"]
        config.write_text(yaml.safe_dump(data))
        running.wait_event("config_reloaded", timeout=10, changed_keys=["company.goals"])

        config.chmod(0)
        os.utime(config, (1, 1))  # a changed mtime, so the watcher reads it again
        if os.geteuid() == 0:
            # Honestly: root reads a mode-000 file, so there is nothing to reject.
            running.wait_event("config_reloaded", timeout=10, changed_keys=[])
        else:
            running.wait_event("config_rejected", timeout=10)
        config.chmod(0o644)
        second = submit_code_tasks(config, names[1:])[names[1]]
        settle(running, config, [second])
        finish(running, config, [first, second])
    finally:
        running.daemon.stop()
    print(f"\nconfig deleted: {missing['errors']}; directory: {unreadable['errors']}")
