"""A branch waiting for the merge queue is tested ahead, on top of the candidate the queue is testing.

When the branch ahead merges, main is exactly the base the waiting branch was tested on: its candidate is
fast-forwarded without testing again. When the branch ahead does not merge (red), the waiting branch's green
run on top of it counts for nothing: it is built and tested on main as if nothing had been tested ahead.
Through the real daemon (two Tech Lead workers: two branches at the queue at once) and the fake server.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from ai_agents.domain import TaskStatus
from tests.conftest import wait_for
from tests.mainline import git, merge_commits_green
from tests.pipeline.test_merge_queue import FINAL, change, queue_rows, script, suite

# Slow in the queue's own worktree, so that the second branch reaches the queue while the first is being
# tested there; ``fails_in`` names the directory where it fails.
SLOW_TEST = ("import os\nimport time\n\nfrom alpha import alpha\n\n\n"
             "def test_alpha():\n    assert alpha() == 1\n\n\n"
             "def test_where():\n    here = os.path.basename(os.getcwd())\n"
             "    if here == 'merge-queue':\n        time.sleep({pause})\n"
             "    assert here != {fails_in!r}\n")
BETA_TEST = "from beta import beta\n\n\ndef test_beta():\n    assert beta() == 2\n"


def alpha_beta(alpha_test: str) -> list[dict[str, Any]]:
    """The script's rules for two tasks: ALPHATASK (``alpha.py``, tested by ``alpha_test``) and BETATASK."""
    return [
        {"when": {"schema": "TestSuite", "contains": "ALPHATASK"},
         "reply": suite("tests/test_alpha.py", "alpha.py", alpha_test)},
        {"when": {"schema": "TestSuite", "contains": "BETATASK"},
         "reply": suite("tests/test_beta.py", "beta.py", BETA_TEST)},
        {"when": {"schema": "CodeChange", "contains": "ALPHATASK"},
         "reply": change("alpha.py", "def alpha():\n    return 1\n")},
        {"when": {"schema": "CodeChange", "contains": "BETATASK"},
         "reply": change("beta.py", "def beta():\n    return 2\n")},
    ]


def run(fake_llm: Any, build: Any, fails_in: str, pause: float = 3) -> tuple[Any, Any, Any]:
    fake_llm.set_script(script(alpha_beta(SLOW_TEST.format(fails_in=fails_in, pause=pause))))
    app = build(fake_llm, {"agents": {"developer": {"workers": 2}, "qa": {"workers": 2},
                                      "tech_lead": {"workers": 2}, "max_fix_attempts": 1, "max_approaches": 1},
                            "orchestrator": {"max_task_attempts": 1}},
                start=False)
    alpha_row = lambda: queue_rows(app).get(alpha.id, {})  # noqa: E731
    # Beta's code is written once alpha's candidate is being tested: beta reaches the queue behind it.
    fake_llm.hold("CodeChange", "BETATASK", until=lambda: alpha_row().get("state") == "testing")
    app.start()
    alpha = app.orchestrator.submit_task("code", "ALPHATASK alpha", "ALPHATASK: see the tests.")
    beta = app.orchestrator.submit_task("code", "BETATASK beta", "BETATASK: see the tests.")
    for t in (alpha, beta):
        wait_for(lambda t=t: app.tasks.get(t.id).status in FINAL, timeout=150, message=f"task {t.id} final")
    return app, app.tasks.get(alpha.id), app.tasks.get(beta.id)


def not_ok(ws: Any, *args: str) -> bool:
    return subprocess.run(["git", "-C", str(ws), *args], capture_output=True).returncode != 0


def events(app: Any, name: str, task_id: str) -> list[dict[str, Any]]:
    lines = app.live.current.logging.file.read_text().splitlines()
    return [e for e in map(json.loads, lines) if e.get("event") == name and e.get("task_id") == task_id]


def test_a_branch_tested_ahead_on_the_candidate_that_merges_is_fast_forwarded_untested(fake_llm, build, tmp_path):
    app, alpha, beta = run(fake_llm, build, fails_in="nowhere")
    assert alpha.status == beta.status == TaskStatus.COMPLETED, (alpha.error, beta.error)
    ws = app.live.current.file_system.workspace_path
    rows = queue_rows(app)
    ahead = events(app, "merge_queue_pretested", beta.id)
    assert ahead and ahead[-1]["green"] and ahead[-1]["base"] == rows[alpha.id]["merged_sha"]
    # Main moved to the very candidate tested ahead: beta's merge sits on alpha's, and the queue did not run
    # beta's suite on main again.
    assert rows[beta.id]["merged_sha"] == ahead[-1]["candidate"]
    assert git(ws, "rev-parse", f"{rows[beta.id]['merged_sha']}^1").strip() == rows[alpha.id]["merged_sha"]
    assert [e["ahead"] for e in events(app, "merge_queue_tested", beta.id)] == [True]
    assert rows[beta.id]["test_seconds"] > 0
    assert len(merge_commits_green(ws, tmp_path)) == 2  # every merge commit on main's first parents is green
    root = tmp_path / "data" / "worktrees"
    # The worktree of the run ahead is kept for the next branch, clean and detached at what it tested.
    assert sorted(p.name for p in root.iterdir()) == ["merge-queue", "merge-queue-ahead-1"]
    assert git(root / "merge-queue-ahead-1", "status", "--porcelain", "--ignored").strip() == ""
    assert git(root / "merge-queue-ahead-1", "rev-parse", "HEAD").strip() == ahead[-1]["candidate"]


# Beta's run ahead is slow (in the first worktree for runs ahead, which beta takes: it reaches the queue first;
# gamma's, in the second, runs beta's tests too): gamma reaches the queue meanwhile. With ``red`` it then fails
# there (only there).
SLOW_AHEAD_TEST = ("import os\nimport time\n\nfrom beta import beta\n\n\n"
                   "def test_beta():\n    assert beta() == 2\n\n\n"
                   "def test_where():\n    if os.path.basename(os.getcwd()) == 'merge-queue-ahead-1':\n"
                   "        time.sleep({pause})\n        assert not {red}\n")
GAMMA_TEST = "from gamma import gamma\n\n\ndef test_gamma():\n    assert gamma() == 3\n"


RunAhead = tuple[str, str, str, bool]  # task id, base, candidate, green


def train(fake_llm: Any, build: Any, *, beta_red_ahead: bool) -> tuple[Any, list[Any], list[RunAhead]]:
    """Alpha, beta and gamma at the queue one behind the other (beta's run ahead slow, red with ``beta_red_ahead``):
    (the app, the three tasks, every run ahead as (task id, base, candidate, green) in log order)."""
    tasks = {"ALPHATASK": ("alpha", 1, SLOW_TEST.format(fails_in="nowhere", pause=3)),
             "BETATASK": ("beta", 2, SLOW_AHEAD_TEST.format(pause=15, red=beta_red_ahead)),
             "GAMMATASK": ("gamma", 3, GAMMA_TEST)}
    fake_llm.set_script(script(
        [{"when": {"schema": "TestSuite", "contains": marker},
          "reply": suite(f"tests/test_{name}.py", f"{name}.py", test)} for marker, (name, _, test) in tasks.items()]
        + [{"when": {"schema": "CodeChange", "contains": marker},
            "reply": change(f"{name}.py", f"def {name}():\n    return {value}\n")}
           for marker, (name, value, _) in tasks.items()]))
    app = build(fake_llm, {"agents": {"developer": {"workers": 3}, "qa": {"workers": 3},
                                      "tech_lead": {"workers": 3}, "max_fix_attempts": 1, "max_approaches": 1},
                           "orchestrator": {"max_task_attempts": 1}},
                start=False)
    rows = lambda: queue_rows(app)  # noqa: E731
    fake_llm.hold("CodeChange", "BETATASK", until=lambda: rows().get(alpha.id, {}).get("state") == "testing")
    fake_llm.hold("CodeChange", "GAMMATASK", until=lambda: beta.id in rows())
    app.start()
    alpha, beta, gamma = (app.orchestrator.submit_task("code", f"{marker} {name}", f"{marker}: see the tests.")
                          for marker, (name, _, _) in tasks.items())
    for t in (alpha, beta, gamma):
        wait_for(lambda t=t: app.tasks.get(t.id).status in FINAL, timeout=200, message=f"task {t.id} final")
    lines = [json.loads(line) for line in app.live.current.logging.file.read_text().splitlines()]
    ahead = [(e["task_id"], e["base"], e["candidate"], e["green"]) for e in lines
             if e.get("event") == "merge_queue_pretested"]
    return app, [app.tasks.get(t.id) for t in (alpha, beta, gamma)], ahead


@pytest.mark.slow
def test_a_train_the_branch_behind_is_tested_on_a_candidate_still_being_tested(fake_llm, build, tmp_path):
    """Three branches at the queue: the third is tested on top of the second's candidate while the second's own
    run ahead is still going (the candidate is published as soon as it is built), and all three merge, each
    on the tree it was tested on."""
    app, (alpha, beta, gamma), pretested = train(fake_llm, build, beta_red_ahead=False)
    assert all(t.status == TaskStatus.COMPLETED for t in (alpha, beta, gamma)), [t.error for t in (alpha, beta, gamma)]
    beta_ahead = [c for task, _, c, _ in pretested if task == beta.id]
    gamma_on_beta = [i for i, (task, base, _, _) in enumerate(pretested) if task == gamma.id and base in beta_ahead]
    # Gamma's run on top of beta's candidate ended before beta's own run ahead did: it started while beta's
    # candidate was still being tested.
    first_beta = next(i for i, (task, _, _, _) in enumerate(pretested) if task == beta.id)
    assert gamma_on_beta and gamma_on_beta[0] < first_beta, pretested
    final = queue_rows(app)
    ws = app.live.current.file_system.workspace_path
    assert final[beta.id]["merged_sha"] in beta_ahead  # beta merged the candidate it tested ahead
    assert git(ws, "rev-parse", f"{final[gamma.id]['merged_sha']}^1").strip() == final[beta.id]["merged_sha"]
    assert len(merge_commits_green(ws, tmp_path)) == 3


def test_the_queue_and_its_runs_ahead_are_ready_before_the_first_branch(fake_llm, build, tmp_path):
    """At start: the queue's worktree and one worktree for runs ahead per further merge-stage worker, at main,
    each with its next run's process started (under bubblewrap); the first branch merges through them."""
    from ai_agents.testing.sandbox import find_bwrap

    app = build(fake_llm, {"agents": {"tech_lead": {"workers": 3}}})
    queue = app.merge_queue
    main = git(app.workspace.fs.workspace_path, "rev-parse", "main").strip()
    slots = [queue.path, queue.path.with_name(f"{queue.path.name}-ahead-1"),
             queue.path.with_name(f"{queue.path.name}-ahead-2")]
    for path in slots:
        assert (path / ".git").is_file(), f"{path.name} not made at start"
        assert git(path, "rev-parse", "HEAD").strip() == main
    assert not queue.path.with_name(f"{queue.path.name}-ahead-3").exists()
    runners = [queue.suite.runner, *(queue.suite.runner_at(p) for p in slots[1:])]
    if find_bwrap() is not None and app.workspace.runner._use_bwrap()[0] is not None:
        wait_for(lambda: all(r._spare is not None for r in runners), timeout=60,
                 message="a process started for each of the queue's worktrees")
    fake_llm.set_script(script([
        {"when": {"schema": "TestSuite"}, "reply": suite("tests/test_beta.py", "beta.py", BETA_TEST)},
        {"when": {"schema": "CodeChange"}, "reply": change("beta.py", "def beta():\n    return 2\n")},
    ]))
    task = app.orchestrator.submit_task("code", "beta", "see the tests")
    wait_for(lambda: app.tasks.get(task.id).status in FINAL, timeout=150, message="the task final")
    assert app.tasks.get(task.id).status == TaskStatus.COMPLETED, app.tasks.get(task.id).error
    assert merge_commits_green(app.workspace.fs.workspace_path, tmp_path / "check")
