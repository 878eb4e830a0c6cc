"""SIGTERM of the real daemon at aimed moments: exit 0, nothing lost, nothing half-done.

The documented guarantee, asserted after every stop (not only at the end): each task in
flight either finished within shutdown_grace or was released back to the queue (its step's
processes killed, its attempt not counted) to be redone at the next start; the database
has no task left running. Times are printed, never asserted: a loaded machine may need
longer for a step, and then the task is released instead of finished, which is fine.
"""

from __future__ import annotations

import os
import random
import time

import pytest

from ai_agents.llm.script import Script
from tests.chaos.aim import Aimer, plan
from tests.chaos.driver import start, stop
from tests.chaos.invariants import all_problems, database_problems, outcome_summary, repository_problems
from tests.chaos.observe import proc_children_supported
from tests.chaos.scenario import (
    all_final,
    chaos_config,
    chaos_script,
    db_path,
    helper_names,
    helper_rules,
    helper_test_code,
    submit_code_tasks,
    task_rows,
    workspace,
)
from tests.conftest import wait_for
from tests.pipeline.conftest import story_rules

pytestmark = pytest.mark.skipif(not proc_children_supported(), reason="needs /proc/<pid>/task/<tid>/children")

GRACE = 4.0
INTERRUPTED = "interrupted by shutdown; will resume at start"
SEED = int(os.environ.get("CHAOS_SEED", "5"))


@pytest.mark.slow  # a long end-to-end run: .ci/run runs it in its second step (--runslow -m slow)
@pytest.mark.timeout(150)
def test_sigterm_at_aimed_moments_exits_zero_within_grace_and_leaves_nothing_half_done(fake_llm, write_config):
    names = helper_names(4)
    fake_llm.set_script(chaos_script(names))
    fake_llm.delay = 0.05
    config = write_config(fake_llm, chaos_config(shutdown_grace=GRACE))
    ids = list(submit_code_tasks(config, names).values())
    lines = []
    for i, (target, hold) in enumerate(plan(3, ("tests_run", "llm_call", "git_merge"), SEED)):
        running = start(config)
        try:
            time.sleep(hold)  # a random pause: the signals spread over the workload
            aimer = Aimer(running.pid, running.tail, db_path(config), fake_llm, rng=random.Random(SEED * 100 + i))
            shot = aimer.fire(target, lambda r=running: r.daemon.signal(15), deadline=15)
            t0 = time.monotonic()
            code = running.daemon.wait(GRACE + 30)
            took = time.monotonic() - t0
        finally:
            running.daemon.stop()
        finished = running.tail.named("shutdown_finished")
        interrupted = [e.get("task_id") for e in running.tail.named("task_interrupted")]
        lines.append(f"{shot.line()} | exit {code} after {took:.2f}s, interrupted {interrupted}")
        assert code == 0, running.tail.other_lines[-10:]
        assert finished, lines[-1]
        # Each task still running when the grace ran out was released to the queue, not lost.
        assert set(finished[-1]["unfinished"]) <= set(interrupted), lines[-1]
        rows = {r["id"]: r for r in task_rows(config)}
        assert all((rows[t]["status"], rows[t]["error"]) == ("queued", INTERRUPTED) for t in interrupted), lines[-1]
        # No task marked running; the repository clean on main unless a step was cut off (the next
        # start repairs that, which the final checks cover).
        assert not database_problems(config), lines[-1]
        if not interrupted:
            assert not repository_problems(workspace(config)), lines[-1]

    running = start(config)
    try:
        wait_for(lambda: all_final(config, ids), timeout=60, interval=0.2, message="every task final")
        code, took = stop(running, GRACE)
    finally:
        running.daemon.stop()
    print(f"\nSIGTERM chaos, seed {SEED}:\n  " + "\n  ".join(lines))
    summary = outcome_summary(config, ids)
    print(f"  final stop: exit {code} after {took:.2f}s; outcome {summary}")
    assert code == 0
    problems = all_problems(config, ids)
    assert not problems, "\n".join(problems)
    assert summary["statuses"] == {"completed": len(names)}, summary["not_completed"]


@pytest.mark.timeout(90)
def test_sigterm_when_the_grace_runs_out_mid_test_run_releases_the_task_and_the_restart_repairs(
        fake_llm, write_config):
    """A step longer than shutdown_grace: the daemon still exits 0, the task goes back to the queue
    (not lost, its attempt not counted), and the next start cleans the abandoned step."""
    names = helper_names(1)
    # Slow only while the module is missing (QA's run before the code), so the rest stays quick.
    slow_tests = ("import importlib.util\nimport time\n\nif importlib.util.find_spec('h01_helper') is None:\n"
                  "    time.sleep(2.5)  # a slow suite\n\n" + helper_test_code(names[0]))
    rules = helper_rules(names)
    rules[0]["reply"]["test_code"] = slow_tests
    fake_llm.set_script(Script.from_data({"rules": rules + story_rules()}))
    grace = 0.5
    config = write_config(fake_llm, chaos_config(shutdown_grace=grace))
    task_id = submit_code_tasks(config, names)[names[0]]

    running = start(config)
    try:
        shot = Aimer(running.pid, running.tail, db_path(config), fake_llm).fire(
            "tests_run", lambda: running.daemon.signal(15), deadline=20)
        t0 = time.monotonic()
        code = running.daemon.wait(30)
        took = time.monotonic() - t0
    finally:
        running.daemon.stop()
    assert shot.hit and code == 0, (shot.line(), code, took)
    assert [e["task_id"] for e in running.tail.named("task_interrupted")] == [task_id]
    row = next(r for r in task_rows(config) if r["id"] == task_id)
    assert (row["status"], row["attempts"], row["error"]) == ("queued", 0, INTERRUPTED)
    left = repository_problems(workspace(config))  # the abandoned test run's branch and file

    running = start(config)
    try:
        recovered = [e["actions"] for e in running.tail.named("workspace_recovered")]
        wait_for(lambda: all_final(config, [task_id]), timeout=40, interval=0.2, message="the task final")
        code, _ = stop(running, grace)
    finally:
        running.daemon.stop()
    print(f"\ngrace ran out: {shot.line()}; exit 0 after {took:.2f}s; left {left}; restart {recovered}")
    assert code == 0
    problems = all_problems(config, [task_id])
    assert not problems, "\n".join(problems)
    assert outcome_summary(config, [task_id])["statuses"] == {"completed": 1}
