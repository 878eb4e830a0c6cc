"""30% of LLM calls fail (429/500/529, timeouts, dropped connections, invalid JSON, schema-violating
and empty answers): the daemon still finishes the work, its main loop never dies, and the
retries, repairs and fallbacks are in ``llm_calls`` and the log.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.driver import start, stop
from tests.chaos.invariants import all_problems, outcome_summary
from tests.chaos.scenario import all_final, chaos_config, chaos_script, connect, helper_names, submit_code_tasks
from tests.conftest import FAKE_KEY, wait_for
from tests.fakes.llm_server import FAULT_KINDS, FakeLLMServer

FAULT_RATE = 0.3
SEED = int(os.environ.get("CHAOS_SEED", "3"))
FALLBACK_MODEL = "fallback-model"


def heartbeat(config: Path) -> dict[str, Any]:
    """The daemon's heartbeat row (written every heartbeat_interval; ``loop_at`` = last main loop)."""
    with connect(config) as conn:
        row = conn.execute("SELECT value FROM daemon_state WHERE key = 'heartbeat'").fetchone()
    return json.loads(row["value"]) if row else {}


def fault_kind(error: str) -> str:
    """The failure an ``llm_calls.error`` records: the HTTP status, timeout, dropped connection."""
    if match := re.search(r"answered (\d{3})", error):
        return match.group(1)
    for kind in ("timeout", "dropped", "refused"):
        if kind in error:
            return kind
    return error.split(":")[0]


def llm_call_figures(config: Path) -> dict[str, Any]:
    """Rows of ``llm_calls``: how many, how many failed and with what, how many the fallback answered."""
    with connect(config) as conn:
        rows = conn.execute("SELECT model, error FROM llm_calls").fetchall()
    errors = Counter(fault_kind(r["error"]) for r in rows if r["error"])
    return {"calls": len(rows), "failed_attempts": sum(errors.values()), "errors": dict(errors),
            "fallback_rows": sum(r["model"] == FALLBACK_MODEL for r in rows)}


@pytest.mark.slow  # a long end-to-end run: .ci/run runs it in its second step (--runslow -m slow)
@pytest.mark.timeout(120)
def test_thirty_percent_llm_faults_the_work_still_gets_done(fake_llm, write_config):
    names = helper_names(6)
    retry = {"action": "retry", "reasoning": "a flaky model; try again", "new_description": None}
    # Commit messages asked separately: more calls, so more of them for the faults to hit.
    fake_llm.set_script(chaos_script(names, messages=False, EscalationDecision=retry))
    fake_llm.fault_rate(FAULT_RATE, FAULT_KINDS, seed=SEED)
    fake_llm.hang_seconds = 3.0  # the "timeout" fault: held longer than llm.timeout, so the client gives up
    # The first call is refused twice with 429 and Retry-After: 1 (capped at retry_max_wait): one retry,
    # then the fallback, whatever the random faults do.
    fake_llm.fail_next(2, status=429, headers={"retry-after": "1"})
    with FakeLLMServer(chaos_script(names, messages=False, EscalationDecision=retry)) as fallback:
        config = write_config(fake_llm, chaos_config(llm={
            "timeout": 0.5, "max_retries": 1, "retry_max_wait": 0.2,
            "fallback": [{"provider": "openai", "model": FALLBACK_MODEL, "api_key": FAKE_KEY,
                          "base_url": fallback.openai_base_url, "timeout": 5}],
            "prices": {"gpt-4o-mini": {"input": 0.15, "output": 0.6}, FALLBACK_MODEL: {"input": 0.1, "output": 0.1}},
        }))
        ids = list(submit_code_tasks(config, names).values())
        t0 = time.monotonic()
        running = start(config)
        try:
            beats: list[str] = []

            def settled() -> bool:
                running.assert_alive()
                beat = heartbeat(config).get("loop_at")
                if beat and (not beats or beat != beats[-1]):
                    beats.append(beat)
                return all_final(config, ids)

            wait_for(settled, timeout=90, interval=0.25, message="every task final under LLM faults")
            # The main loop still turns after all that.
            last = beats[-1]
            wait_for(lambda: heartbeat(config).get("loop_at", "") > last, timeout=5, message="a later main loop")
            code, _ = stop(running, 5)
        finally:
            running.daemon.stop()

    figures = llm_call_figures(config)
    summary = outcome_summary(config, ids)
    events = Counter(e.get("event") for e in running.tail.events)
    print(f"\nLLM faults at {FAULT_RATE:.0%} (seed {SEED}), {time.monotonic() - t0:.1f}s: {figures}; "
          f"primary requests {len(fake_llm.requests)}, fallback requests {len(fallback.requests)}; "
          f"events: retry {events['llm_retry']}, fallback {events['llm_fallback']}, "
          f"repair {events['llm_output_repair']}, invalid {events['llm_output_invalid']}, "
          f"task_retry {events['task_retry']}, escalated {events['task_escalated']}; "
          f"main-loop turns seen {len(beats)}; outcome {summary}")
    assert code == 0
    assert events["job_failed"] == 0, [e for e in running.tail.events if e.get("event") == "job_failed"]
    # The heartbeat kept coming with a moving main-loop time, however long the run took: the loop (every 0.5 s)
    # never stood still for 5 s while the faults went on (a count of turns would only measure the run's length).
    stamps = [datetime.fromisoformat(b) for b in beats]
    gaps = [(later - earlier).total_seconds() for earlier, later in pairwise(stamps)]
    assert len(beats) >= 3 and max(gaps) < 5.0, beats
    problems = all_problems(config, ids)
    assert not problems, "\n".join(problems)
    # Every task is completed or failed with its reason (checked above); most get done despite the faults.
    assert summary["statuses"].get("completed", 0) >= len(names) // 2, summary
    # Failures happened and were recorded, retried, repaired and fallen back from.
    assert figures["failed_attempts"] >= figures["calls"] * FAULT_RATE / 4, figures
    assert len(figures["errors"]) >= 3, figures  # several kinds of failure, not one
    assert events["llm_retry"] > 0 and events["llm_output_repair"] > 0
    assert events["llm_fallback"] > 0 and figures["fallback_rows"] > 0, figures
