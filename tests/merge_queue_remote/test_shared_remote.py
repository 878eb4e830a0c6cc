"""Code from many machines: two daemons, each with its own workspace clone and SQLite, share one bare
remote (``git.shared_remote``). Task branches are published as they are committed; the merge queue
builds on the remote's main, tests, and moves it by a compare-and-swap push; a node whose push is
refused (the other merged meanwhile) fetches, rebuilds and tests again. Real git, real pytest runs,
the real SDK against the fake model server.
"""

from __future__ import annotations

from typing import Any

from ai_agents.domain import TaskStatus, TaskType
from tests.chaos.scenario import chaos_script, helper_names, task_title
from tests.conftest import wait_for
from tests.mainline import git, merge_commits_green
from tests.merge_queue_remote.nodes import (
    agent_commits,
    bare_remote,
    build_node,
    code_flow,
    events,
    queue,
    remote_main,
    task_merges,
)

FINAL = (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.ESCALATED, TaskStatus.CANCELLED)


class HeldRunner:
    """The queue's real test runner; its first run waits until ``moved()`` (the other node merged)."""

    def __init__(self, real: Any, moved: Any):
        self.real, self.moved, self.held = real, moved, False

    def run_tests(self, *args: Any, **kwargs: Any) -> Any:
        if not self.held:
            self.held = True
            wait_for(self.moved, timeout=120, interval=0.1, message="the other node's merge on the remote")
        return self.real.run_tests(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_two_nodes_race_into_one_remote_main_each_task_merged_once_main_green(fake_llm, write_config, tmp_path):
    remote = bare_remote(tmp_path)
    names = helper_names(2)
    fake_llm.set_script(chaos_script(names))
    a, b = (build_node(write_config, fake_llm, tmp_path, n, remote) for n in ("a", "b"))
    try:
        start = remote_main(remote)
        # Node a's queue tests its candidate only once node b has merged: a's push, leased on the main
        # its candidate was built on, must then be refused, and a must fetch, rebuild and test again. And b's
        # queue tests only once a has built its candidate on the first main: otherwise, on a slow machine,
        # b could merge before a reaches its queue, and a would simply build on b's merge.
        queue(a).suite.runner = HeldRunner(queue(a).suite.runner, lambda: remote_main(remote) != start)
        queue(b).suite.runner = HeldRunner(queue(b).suite.runner,
                                     lambda: (queue(a).row(ta.id) or {}).get("state") in ("testing", "tested"))
        ta = a.orchestrator.submit_task("code", task_title(names[0]), f"{names[0]} brief")
        tb = b.orchestrator.submit_task("code", task_title(names[1]), f"{names[1]} brief")
        a.start()
        b.start()
        for app, t in ((a, ta), (b, tb)):
            wait_for(lambda app=app, t=t: app.tasks.get(t.id).status in FINAL, timeout=180, message="task final")
        assert a.tasks.get(ta.id).status == TaskStatus.COMPLETED, a.tasks.get(ta.id).error
        assert b.tasks.get(tb.id).status == TaskStatus.COMPLETED, b.tasks.get(tb.id).error
    finally:
        for app in (a, b):
            app.stop()
    # b merged first; a's leased push was refused and a merged on top of b's merge.
    assert task_merges(remote) == [tb.id, ta.id]
    moved = [e for e in events(tmp_path) if e["event"] == "merge_queue_main_moved" and e.get("task_id") == ta.id]
    assert moved and moved[0]["shared_remote"] is True
    refused = [e for e in events(tmp_path) if e["event"] == "git_push_lease" and e["branch"] == "main"
               and not e["pushed"]]
    assert len(refused) == 1
    # One QA and one Developer commit per task on the remote's main; both branches were published (and,
    # merged and completed, deleted: git.delete_merged_branches).
    for app, t in ((a, ta), (b, tb)):
        assert agent_commits(remote, t.id) == ["Developer Agent", "QA Agent"]
        branch = app.tasks.get(t.id).payload["branch"]
        assert [e for e in events(tmp_path) if e["event"] == "git_push_lease" and e["branch"] == branch
                and e["pushed"]]
    assert git(remote, "for-each-ref", "--format=%(refname)", "refs/heads").split() == ["refs/heads/main"]
    # Every first-parent merge of the remote's main is green; both local mains follow it.
    check = tmp_path / "check"
    git(tmp_path, "clone", "-q", str(remote), str(check))
    assert len(merge_commits_green(check, tmp_path)) == 2
    for name in ("a", "b"):  # b's local main is b's merge: it follows the remote at its queue's next use
        local = git(tmp_path / name / "workspace", "rev-parse", "main").strip()
        git(remote, "merge-base", "--is-ancestor", local, "main")
    assert git(tmp_path / "a" / "workspace", "rev-parse", "main").strip() == remote_main(remote)


def test_a_task_started_on_one_node_is_resumed_on_another_from_its_branch_and_merged_once(
        fake_llm, write_config, tmp_path):
    remote = bare_remote(tmp_path)
    names = helper_names(1)
    fake_llm.set_script(chaos_script(names))
    a = build_node(write_config, fake_llm, tmp_path, "a", remote)
    b = build_node(write_config, fake_llm, tmp_path, "b", remote)
    try:
        # Node a runs QA's stage and dies (its database and workspace are gone for the others).
        task = a.tasks.create(TaskType.CODE, task_title(names[0]), f"{names[0]} brief")
        tests = code_flow(a).run(task)
        assert tests.next_stage == "code"
        branch = tests.result["branch"]
        assert git(remote, "rev-parse", branch).strip() == tests.result["tests_commit"]  # published
        a.stop()
        # Node b takes the code stage of the same task (what the shared store would hand it).
        b.tasks.create(TaskType.CODE, task.title, task.description, task_id=task.id,
                       payload={**tests.result, "stage": "code"})
        b.start()
        wait_for(lambda: b.tasks.get(task.id).status in FINAL, timeout=120, message="task final on b")
        done = b.tasks.get(task.id)
        assert done.status == TaskStatus.COMPLETED, done.error
    finally:
        b.stop()
    created = [e for e in events(tmp_path) if e["event"] == "worktree_created" and e["task_id"] == task.id]
    # a: from main; b: from the remote branch (then again for b's merge stage, from its own up-to-date branch:
    # with a shared remote a worktree is released at the end of each stage).
    assert [e["from_remote"] for e in created][:2] == [None, "created"] and len(created) >= 2
    # QA asked once (on a); b's Developer built on a's QA commit; one merge on the remote's main.
    asked = [r for r in fake_llm.requests if "TestSuite" in str(r.json) and task.id in str(r.json)]
    assert len(asked) == 1
    assert task_merges(remote) == [task.id]
    assert agent_commits(remote, task.id) == ["Developer Agent", "QA Agent"]
    git(remote, "merge-base", "--is-ancestor", tests.result["tests_commit"], "main")
    assert done.result and done.result["merge_commit"] == remote_main(remote)


def test_a_crash_between_the_push_of_main_and_the_database_merges_nothing_twice(fake_llm, write_config, tmp_path):
    remote = bare_remote(tmp_path)
    names = helper_names(1)
    fake_llm.set_script(chaos_script(names))
    a = build_node(write_config, fake_llm, tmp_path, "a", remote)
    b = build_node(write_config, fake_llm, tmp_path, "b", remote)
    try:
        task = a.tasks.create(TaskType.CODE, task_title(names[0]), f"{names[0]} brief")
        tests = code_flow(a).run(task)
        before = remote_main(remote)
        task.payload.update({**tests.result, "stage": "code"})
        coded = code_flow(a).run(task)
        assert coded.next_stage == "merge"  # committed; the Tech Lead's merge stage comes next
        task.payload.update({**coded.result, "stage": "merge"})
        merged = code_flow(a).run(task)
        assert merged.next_stage == "release"
        pushed = remote_main(remote)
        assert task_merges(remote) == [task.id]
        # As if a died right after its push: its row not yet "merged", its local main not yet moved.
        a.db.execute("UPDATE merge_queue SET state = 'tested', merged_sha = NULL WHERE task_id = ?", (task.id,))
        ws = tmp_path / "a" / "workspace"
        git(ws, "reset", "-q", "--hard", before)
        again = code_flow(a).run(task)
        assert again.next_stage == "release" and again.result["merge_commit"] == pushed
        assert a.db.query_one("SELECT state FROM merge_queue WHERE task_id = ?", (task.id,))["state"] == "merged"
        assert git(ws, "rev-parse", "main").strip() == pushed  # the local main followed the remote's
        # Another node with no row for the task (its own database) finds the merge on the remote too.
        b.tasks.create(TaskType.CODE, task.title, task.description, task_id=task.id, payload=dict(task.payload))
        elsewhere = code_flow(b).run(b.tasks.get(task.id))
        assert elsewhere.next_stage == "release" and elsewhere.result["merge_commit"] == pushed
    finally:
        for app in (a, b):
            app.stop()
    assert task_merges(remote) == [task.id] and remote_main(remote) == pushed
    resumed = [e for e in events(tmp_path) if e["event"] == "merge_queue_merged" and e.get("resumed")]
    assert len(resumed) == 2
