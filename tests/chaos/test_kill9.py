"""kill -9 of the real daemon at aimed moments, restart after each: nothing lost, nothing twice.

Moments: an LLM request in flight, a pytest run, a git commit, a git merge, an open
SQLite write transaction, and the instants right after a commit, a merge or a hand-off
(git changed, the database not yet told). Every shot is printed with what it hit.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.chaos.aim import MOMENTS, plan
from tests.chaos.driver import kill_and_restart, stop
from tests.chaos.invariants import all_problems, outcome_summary
from tests.chaos.observe import proc_children_supported
from tests.chaos.scenario import all_final, chaos_config, chaos_script, helper_names, submit_code_tasks
from tests.conftest import wait_for
from tests.fakes.llm_server import FakeLLMServer

pytestmark = pytest.mark.skipif(not proc_children_supported(), reason="needs /proc/<pid>/task/<tid>/children")

CI_TARGETS = ("git_merge", "git_commit", "tests_run", "db_write", "llm_call")  # the rarest moments first
SEED = int(os.environ.get("CHAOS_SEED", "7"))  # printed with the results; set it to replay a run


def run_kill_chaos(fake_llm: FakeLLMServer, write_config: Callable[..., Path], *, tasks: int,
                   targets: tuple[str, ...], kills: int, seed: int, settle_timeout: float) -> None:
    """Submit ``tasks`` code tasks, kill -9 the daemon ``kills`` times at ``targets`` (in turn), let
    the last start finish the work, stop it with SIGTERM and check every end invariant."""
    names = helper_names(tasks)
    fake_llm.set_script(chaos_script(names))
    fake_llm.delay = 0.05  # an answer takes a while: there is always a request in flight to hit
    grace = 5.0
    # Each kill costs the stage it hits one attempt; with kills + 1 attempts no task can run out
    # of attempts because of the kills alone, so every task must complete.
    config = write_config(fake_llm, chaos_config(max_task_attempts=kills + 1, shutdown_grace=grace))
    ids = list(submit_code_tasks(config, names).values())
    t0 = time.monotonic()

    running, records = kill_and_restart(config, fake_llm, ids, plan(kills, targets, seed), seed)
    try:
        wait_for(lambda: all_final(config, ids), timeout=settle_timeout, interval=0.2,
                 message="every task in a final state after the last restart")
        code, took = stop(running, grace)
    finally:
        running.daemon.stop()

    print(f"\nkill -9 chaos: {tasks} tasks, {kills} kills, seed {seed}, {time.monotonic() - t0:.1f}s")
    for record in records:
        print("  " + record.line())
    summary = outcome_summary(config, ids)
    print(f"  outcome: {summary}")
    assert code == 0 and took < grace + 5
    assert len(records) == kills
    problems = all_problems(config, ids)
    assert not problems, "\n".join(problems)
    assert summary["statuses"] == {"completed": tasks}, summary["not_completed"]
    # The shots really landed in the middle of work, and restarts repaired what they left.
    hits = [r for r in records if r.shot.hit]
    assert len(hits) >= kills // 2, [r.line() for r in records]
    assert any(r.recovered.get("tasks_recovered") for r in records), "no kill ever orphaned a running task"


@pytest.mark.slow  # a long end-to-end run: .ci/run runs it in its second step (--runslow -m slow)
@pytest.mark.timeout(150)
def test_kill9_at_aimed_moments_loses_nothing_and_does_nothing_twice(fake_llm, write_config):
    run_kill_chaos(fake_llm, write_config, tasks=8, targets=CI_TARGETS, kills=len(CI_TARGETS), seed=SEED,
                   settle_timeout=90)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_kill9_fifty_tasks_ten_kills(fake_llm, write_config):
    run_kill_chaos(fake_llm, write_config, tasks=50, targets=MOMENTS, kills=10, seed=SEED + 4, settle_timeout=600)
