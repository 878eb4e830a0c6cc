"""kill -9 of the real daemon inside the merge queue: during its full-suite run on a candidate, and
right after that run (between the test and the fast-forward). After each restart the queue resumes
from its SQLite row and the branch: every task merges exactly once and main is green at every merge.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.chaos.aim import kill_tree
from tests.chaos.driver import run_to_the_end, start
from tests.chaos.invariants import all_problems
from tests.chaos.observe import descendants, is_pytest, proc_children_supported
from tests.chaos.scenario import (
    chaos_config,
    chaos_script,
    db_path,
    helper_names,
    submit_code_tasks,
    workspace,
)
from tests.conftest import wait_for
from tests.mainline import git, merge_commits_green

pytestmark = pytest.mark.skipif(not proc_children_supported(), reason="needs /proc/<pid>/task/<tid>/children")


def queue_test_running(pid: int, queue_dir: str) -> bool:
    """A pytest descendant of the daemon runs in the merge queue's worktree."""
    for child, argv in descendants(pid):
        if not is_pytest(argv):
            continue
        try:
            if os.readlink(f"/proc/{child}/cwd").startswith(queue_dir):
                return True
        except OSError:
            continue
    return False


def kill_once(config: Path, running_now: Callable[[int], bool], what: str) -> None:
    """Start the daemon and kill -9 it (and its children) as soon as ``running_now(its pid)``."""
    running = start(config)
    wait_for(lambda: running_now(running.pid), timeout=90, interval=0.01, message=what)
    kill_tree(running.pid)
    assert running.daemon.wait(10) == -signal.SIGKILL


def each_merged_once_and_green(config: Path, ids: list[str], tmp_path: Path) -> None:
    problems = all_problems(config, ids)
    assert not problems, "\n".join(problems)
    ws = workspace(config)
    merges = git(ws, "log", "--first-parent", "--merges", "--format=%(trailers:key=Task-Id,valueonly,separator=)",
                 "main").split()
    assert sorted(merges) == sorted(ids)  # every task merged, each exactly once, all on the first-parent line
    assert len(merge_commits_green(ws, tmp_path)) == len(ids)


@pytest.mark.slow  # a long end-to-end run: .ci/run runs it in its second step (--runslow -m slow)
@pytest.mark.timeout(240)
def test_kill9_during_the_queue_test_and_before_the_fast_forward(fake_llm, write_config, tmp_path):
    names = helper_names(3)
    fake_llm.set_script(chaos_script(names))
    config = write_config(fake_llm, chaos_config(max_task_attempts=4))
    ids = list(submit_code_tasks(config, names).values())
    queue_dir = os.path.realpath(db_path(config).parent / "worktrees" / "merge-queue")

    # 1: during the queue's full-suite run on a candidate.
    kill_once(config, lambda pid: queue_test_running(pid, queue_dir), "the merge queue's test run")
    merged = git(workspace(config), "log", "--first-parent", "--merges", "--format=%H", "main").split()
    merged_before = len(merged)

    # 2: right after a queue run was logged green: the fast-forward is next.
    running = start(config)
    tested = wait_for(lambda: next((e for e in running.tail.named("merge_queue_tested")
                                    if e.get("outcome") == "passed"), None), timeout=90, interval=0.005,
                      message="a green queue run")
    kill_tree(running.pid)
    assert running.daemon.wait(10) == -signal.SIGKILL
    left = git(workspace(config), "log", "--first-parent", "--merges", "--format=%H", "main").split()
    print(f"\nkill 1 with {merged_before} merged; kill 2 after task {tested['task_id']} tested, "
          f"{len(left)} merged")

    run_to_the_end(config, ids, timeout=120)
    each_merged_once_and_green(config, ids, tmp_path)
    assert not git(workspace(config), "stash", "list").strip()


def ahead_test_running(pid: int, queue_dir: str) -> bool:
    """A pytest descendant of the daemon runs in a worktree where a waiting branch is tested ahead."""
    return queue_test_running(pid, queue_dir + "-")


@pytest.mark.slow  # a long end-to-end run: .ci/run runs it in its second step (--runslow -m slow)
@pytest.mark.timeout(240)
def test_kill9_while_a_branch_is_tested_ahead_and_after_it_was(fake_llm, write_config, tmp_path):
    """Branches waiting for the queue are tested ahead (three merge-stage workers). kill -9 during such a run,
    then right after one was recorded green (its row says TESTED on a candidate that is not main yet): after
    the restarts the leftover worktrees are swept, every task merges once, and main is green at each merge."""
    names = helper_names(4)
    fake_llm.set_script(chaos_script(names))
    fake_llm.delay = 0.3  # the same pace for every task: they reach the queue together
    workers = {"workers": 3}
    config = write_config(fake_llm, chaos_config(max_task_attempts=4, agents={
        "developer": workers, "qa": workers, "tech_lead": workers}))
    ids = list(submit_code_tasks(config, names).values())
    queue_dir = os.path.realpath(db_path(config).parent / "worktrees" / "merge-queue")

    kill_once(config, lambda pid: ahead_test_running(pid, queue_dir), "a run ahead in the merge queue")

    running = start(config)
    swept = wait_for(lambda: next((e for e in running.tail.named("worktrees_swept")), None), timeout=30,
                     message="the start's sweep")
    assert any(name.startswith("merge-queue-") for name in swept["removed"])  # the killed run's worktree
    ahead = wait_for(lambda: next((e for e in running.tail.named("merge_queue_pretested") if e.get("green")), None),
                     timeout=90, interval=0.005, message="a green run ahead")
    kill_tree(running.pid)
    assert running.daemon.wait(10) == -signal.SIGKILL
    print(f"\nkilled after task {ahead['task_id']} was tested ahead on {ahead['base'][:12]}")

    run_to_the_end(config, ids, timeout=120)
    each_merged_once_and_green(config, ids, tmp_path)
    # What the killed runs left was swept at each start; the last daemon's worktrees for runs ahead are kept for
    # reuse, at most one per merge-stage worker, each clean.
    root = db_path(config).parent / "worktrees"
    leftovers = sorted(p.name for p in root.iterdir())
    assert leftovers[0] == "merge-queue" and len(leftovers) <= 1 + workers["workers"], leftovers
    for name in leftovers[1:]:
        assert name.startswith("merge-queue-ahead-"), leftovers
        assert not git(root / name, "status", "--porcelain", "--ignored").strip(), name
