"""The merge queue tests a change's merge candidate while the Tech Lead reviews it (``git.test_in_review``).

Changes are lined up in the order their reviews are asked, each candidate built on the one before it, as the
queue would build them if they are approved in that order. When the queue's candidate has exactly a tree that
passed, the merge needs no run of its own; any other candidate is tested as usual, and a red run while the
change is reviewed proves nothing. Through the real daemon and the fake server, whose review answers are held
until what the test orders has happened.
"""

from __future__ import annotations

import subprocess
from typing import Any

from ai_agents.domain import TaskStatus
from tests.conftest import wait_for
from tests.mainline import git, merge_commits_green
from tests.pipeline.test_merge_queue import FINAL, queue_rows, script
from tests.pipeline.test_merge_queue_ahead import alpha_beta, events

ALPHA_TEST = ("import os\n\nfrom alpha import alpha\n\n\n"
              "def test_alpha():\n    assert alpha() == 1\n\n\n"
              "def test_where():\n    assert {fails_in!r} not in os.path.basename(os.getcwd())\n")


def start(fake_llm: Any, build: Any, fails_in: str = "nowhere", test_in_review: bool = True,
          alpha_test: str | None = None) -> Any:
    fake_llm.set_script(script(alpha_beta(alpha_test or ALPHA_TEST.format(fails_in=fails_in))))
    return build(fake_llm, {"agents": {"developer": {"workers": 2}, "qa": {"workers": 2},
                                       "tech_lead": {"workers": 1}, "max_fix_attempts": 1, "max_approaches": 1},
                            "orchestrator": {"max_task_attempts": 1}, "git": {"test_in_review": test_in_review}},
                 start=False)


def run_tasks(app: Any, ids: dict[str, str], *names: str, timeout: float = 150, start: bool = True) -> list[Any]:
    """Start ``app`` (unless ``start`` is false: it runs already), submit the tasks ``names`` (ALPHATASK,
    BETATASK...: their ids into ``ids`` as they are made, for the holds), and wait until each is final."""
    if start:
        app.start()
    for name in names:
        ids[name] = app.orchestrator.submit_task("code", f"{name.upper()}TASK {name}",
                                                 f"{name.upper()}TASK: see the tests.").id
    for name in names:
        wait_for(lambda n=name: app.tasks.get(ids[n]).status in FINAL, timeout=timeout, message=f"{name} final")
    return [app.tasks.get(ids[name]) for name in names]


def merged(app: Any, ids: dict[str, str], name: str) -> bool:
    return queue_rows(app).get(ids.get(name, ""), {}).get("state") == "merged"


def review_of(module: str) -> tuple[str, str]:
    """The hold markers of the Tech Lead's review of ``module`` (the request's schema name comes first)."""
    return "Review\n", f"--- {module} ---"


def in_review_runs(app: Any, task_id: str) -> list[dict[str, Any]]:
    return events(app, "merge_queue_tested_while_reviewed", task_id)


def tree(ws: Any, sha: str) -> str:
    return git(ws, "rev-parse", f"{sha}^{{tree}}").strip()


def test_changes_approved_in_the_order_they_were_reviewed_merge_on_the_trees_tested_meanwhile(
        fake_llm, build, tmp_path):
    app = start(fake_llm, build)
    ids: dict[str, str] = {}
    # Beta's review is asked after alpha's; alpha is approved once beta's candidate (built on alpha's) was
    # tested, beta once alpha merged.
    fake_llm.hold("CodeChange", "BETATASK", until=lambda: bool(in_review_runs(app, ids["alpha"])))
    fake_llm.hold(*review_of("alpha.py"), until=lambda: bool(in_review_runs(app, ids["beta"])))
    fake_llm.hold(*review_of("beta.py"), until=lambda: merged(app, ids, "alpha"))
    main_before = git(app.live.current.file_system.workspace_path, "rev-parse", "main").strip()
    alpha, beta = run_tasks(app, ids, "alpha", "beta")
    assert alpha.status == beta.status == TaskStatus.COMPLETED, (alpha.error, beta.error)

    ws = app.live.current.file_system.workspace_path
    rows = queue_rows(app)
    [in_alpha], [in_beta] = in_review_runs(app, alpha.id), in_review_runs(app, beta.id)
    assert in_alpha["green"] and in_beta["green"]
    # Lined up in the order of the reviews: alpha on main, beta on alpha's candidate.
    assert in_alpha["base"] == main_before and in_beta["base"] == in_alpha["candidate"]
    # Each merged on exactly the tree tested while it was reviewed, and the queue ran no suite of its own.
    for task, tested in ((alpha, in_alpha), (beta, in_beta)):
        assert tree(ws, rows[task.id]["merged_sha"]) == tree(ws, tested["candidate"])
        assert [e["ahead"] for e in events(app, "merge_queue_tested", task.id)] == [True]  # the run in review
        assert events(app, "merge_queue_tested_in_review", task.id)
        assert rows[task.id]["test_seconds"] == tested["seconds"]
    assert git(ws, "rev-parse", f"{rows[beta.id]['merged_sha']}^1").strip() == rows[alpha.id]["merged_sha"]
    assert len(merge_commits_green(ws, tmp_path)) == 2  # every merge commit on main's first parents is green


def test_a_candidate_other_than_the_tree_tested_in_review_is_tested_by_the_queue(fake_llm, build, tmp_path):
    app = start(fake_llm, build)
    ids: dict[str, str] = {}
    # Reviewed alpha then beta (beta's candidate built on alpha's), but beta is approved and merged first:
    # neither candidate the queue builds has a tree tested in review.
    fake_llm.hold("CodeChange", "BETATASK", until=lambda: bool(in_review_runs(app, ids["alpha"])))
    fake_llm.hold(*review_of("beta.py"), until=lambda: bool(in_review_runs(app, ids["beta"])))
    fake_llm.hold(*review_of("alpha.py"), until=lambda: merged(app, ids, "beta"))
    alpha, beta = run_tasks(app, ids, "alpha", "beta")
    assert alpha.status == beta.status == TaskStatus.COMPLETED, (alpha.error, beta.error)

    ws = app.live.current.file_system.workspace_path
    rows = queue_rows(app)
    assert in_review_runs(app, beta.id)[0]["base"] == in_review_runs(app, alpha.id)[0]["candidate"]
    for task in (alpha, beta):
        assert not events(app, "merge_queue_tested_in_review", task.id)
        assert [e["ahead"] for e in events(app, "merge_queue_tested", task.id)] == [True, False]  # then the queue's
    assert git(ws, "rev-parse", f"{rows[alpha.id]['merged_sha']}^1").strip() == rows[beta.id]["merged_sha"]
    assert len(merge_commits_green(ws, tmp_path)) == 2


def test_a_red_run_in_review_proves_nothing_and_the_queue_tests_the_change(fake_llm, build, tmp_path):
    # Alpha's suite fails in the worktrees for runs ahead only: red while it is reviewed, green in the queue.
    app = start(fake_llm, build, fails_in="-ahead-")
    ids: dict[str, str] = {}
    fake_llm.hold(*review_of("alpha.py"), until=lambda: bool(in_review_runs(app, ids["alpha"])))
    run_tasks(app, ids, "alpha")
    alpha = app.tasks.get(ids["alpha"])
    assert alpha.status == TaskStatus.COMPLETED, alpha.error

    [in_review] = in_review_runs(app, alpha.id)
    assert in_review["green"] is False
    assert not events(app, "merge_queue_tested_in_review", alpha.id)
    assert [(e["ahead"], e["outcome"]) for e in events(app, "merge_queue_tested", alpha.id)] == [
        (True, "failed"), (False, "passed")]
    ws = app.live.current.file_system.workspace_path
    assert len(merge_commits_green(ws, tmp_path)) == 1


def test_off_the_queue_runs_nothing_while_a_change_is_reviewed(fake_llm, build, tmp_path):
    app = start(fake_llm, build, test_in_review=False)
    ids: dict[str, str] = {}
    # Held long enough for a run in review to happen, if one were made (it would come right after the tests).
    fake_llm.hold(*review_of("alpha.py"), until=lambda: bool(events(app, "code_tested", ids["alpha"])))
    run_tasks(app, ids, "alpha")
    assert app.tasks.get(ids["alpha"]).status == TaskStatus.COMPLETED
    assert not in_review_runs(app, ids["alpha"])
    assert [e["ahead"] for e in events(app, "merge_queue_tested", ids["alpha"])] == [False]


def test_a_run_the_review_comes_before_is_stopped_and_the_developer_does_not_wait_for_it(fake_llm, build):
    # In the worktrees for runs ahead alpha's suite would run for ten minutes: the review comes once that run has
    # started, and the stage goes on at once (the queue's own run, elsewhere, is quick).
    slow = ("import os\nimport time\n\nfrom alpha import alpha\n\n\n"
            "def test_alpha():\n    if '-ahead-' in os.getcwd():\n        time.sleep(600)\n    assert alpha() == 1\n")
    app = start(fake_llm, build, alpha_test=slow)
    ids: dict[str, str] = {}
    slot = app.merge_queue.path.with_name(f"{app.merge_queue.path.name}-ahead-1")
    fake_llm.hold(*review_of("alpha.py"), until=lambda: (slot / "alpha.py").is_file())
    [task] = run_tasks(app, ids, "alpha", timeout=120)
    assert app.tasks.get(task.id).status == TaskStatus.COMPLETED
    assert events(app, "merge_queue_review_test_stopped", task.id)
    assert not in_review_runs(app, task.id)  # no verdict from a stopped run
    assert [e["ahead"] for e in events(app, "merge_queue_tested", task.id)] == [False]


def test_a_garbage_review_stops_the_run_in_review_and_merges_nothing(fake_llm, build):
    # The review that comes while the run in review goes on is no review at all: the run is stopped, no tree is
    # kept, and the change is not merged; the daemon goes on with the next task.
    slow = ("import os\nimport time\n\nfrom alpha import alpha\n\n\n"
            "def test_alpha():\n    if '-ahead-' in os.getcwd():\n        time.sleep(600)\n    assert alpha() == 1\n")
    app = start(fake_llm, build, alpha_test=slow)
    fake_llm.set_script(script([*alpha_beta(slow), {"when": {"schema": "Review", "contains": "--- alpha.py ---"},
                                                     "reply": "LGTM!! {approve: yes"}]))
    ids: dict[str, str] = {}
    slot = app.merge_queue.path.with_name(f"{app.merge_queue.path.name}-ahead-1")
    fake_llm.hold(*review_of("alpha.py"), until=lambda: (slot / "alpha.py").is_file())
    [task] = run_tasks(app, ids, "alpha", timeout=120)
    assert task.status in (TaskStatus.FAILED, TaskStatus.ESCALATED), task.status
    assert events(app, "merge_queue_review_test_stopped", task.id) and not in_review_runs(app, task.id)
    assert not queue_rows(app).get(task.id)  # never at the queue
    ws = app.live.current.file_system.workspace_path
    assert subprocess.run(["git", "-C", str(ws), "cat-file", "-e", "main:alpha.py"]).returncode != 0
    [beta] = run_tasks(app, ids, "beta", start=False)  # the daemon goes on
    assert beta.status == TaskStatus.COMPLETED, beta.error
