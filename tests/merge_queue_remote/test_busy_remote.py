"""A node that keeps losing the race for the shared remote's main (other nodes merging while its suite
runs) backs off with a growing, jittered wait between its tries, and when every try of a merge lost, its
task waits (requeued, no attempt counted) and merges later: a busy remote never fails a task. Real git
(a bare remote, a rival clone pushing real commits), real pytest runs, the real SDK against the fake model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ai_agents.domain import TaskStatus
from ai_agents.orchestrator.merge_queue import SHARED_TRIES
from tests.chaos.scenario import chaos_script, helper_names, task_title
from tests.conftest import wait_for
from tests.mainline import git, merge_commits_green
from tests.merge_queue_remote.nodes import bare_remote, build_node, events, queue, remote_main, task_merges

FINAL = (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.ESCALATED, TaskStatus.CANCELLED)


class RivalRunner:
    """The queue's real test runner; during each of its first ``wins`` full-suite runs another "node" (a
    clone of the remote) pushes a commit onto the remote's main, so the push that follows the run is refused."""

    def __init__(self, real: Any, rival: Path, wins: int):
        self.real, self.rival, self.wins, self.pushed = real, rival, wins, 0

    def run_tests(self, *args: Any, **kwargs: Any) -> Any:
        if self.pushed < self.wins:
            self.pushed += 1
            git(self.rival, "pull", "-q", "--ff-only", "origin", "main")
            note = self.rival / "notes" / f"rival-{self.pushed}.md"
            note.parent.mkdir(exist_ok=True)
            note.write_text(f"Merged elsewhere, {self.pushed}.\n")
            git(self.rival, "add", "-A")
            git(self.rival, "-c", "user.name=Rival", "-c", "user.email=rival@example.invalid", "commit", "-q",
                "-m", f"Rival merge {self.pushed}")
            git(self.rival, "push", "-q", "origin", "main")
        return self.real.run_tests(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_a_node_that_keeps_losing_the_remotes_main_backs_off_waits_uncounted_and_merges_once(
        fake_llm, write_config, tmp_path):
    remote = bare_remote(tmp_path)
    rival = tmp_path / "rival"
    git(tmp_path, "clone", "-q", str(remote), str(rival))
    names = helper_names(1)
    fake_llm.set_script(chaos_script(names))
    wins = SHARED_TRIES + 2  # more than one merge's tries: the first merge stage ends with the task waiting
    a = build_node(write_config, fake_llm, tmp_path, "a", remote)
    try:
        runner = RivalRunner(queue(a).suite.runner, rival, wins)
        queue(a).suite.runner = runner
        queue(a).backoff = (0.02, 0.1)  # the test's own pace; the growth and the jitter are the daemon's
        task = a.orchestrator.submit_task("code", task_title(names[0]), f"{names[0]} brief")
        a.start()
        wait_for(lambda: a.tasks.get(task.id).status in FINAL, timeout=180, message="task final")
        done = a.tasks.get(task.id)
        assert done.status == TaskStatus.COMPLETED, done.error
        activities = a.memory.activities(task.id)
    finally:
        a.stop()
    assert runner.pushed == wins
    logged = [e for e in events(tmp_path) if e.get("task_id") in (task.id, None)]
    moved = [e for e in logged if e["event"] == "merge_queue_main_moved" and e.get("task_id") == task.id]
    assert len(moved) == wins  # each refused push was followed by a fetch, a rebuild and a new test
    backoffs = [e for e in logged if e["event"] == "merge_queue_backoff"]
    # Between the tries of each merge stage: a wait, never above its cap (first * 2**(n-1), at most cap).
    assert len(backoffs) == wins - 1 and all(0 <= e["seconds"] <= min(0.1, 0.02 * 2 ** (e["tries"] - 1))
                                             for e in backoffs)
    assert [e["tries"] for e in backoffs] == [*range(1, SHARED_TRIES), *range(1, wins - SHARED_TRIES + 1)]
    # Losing the race is not the task's failure: the merge stage was started twice, neither counted as a retry.
    merging = [e for e in logged if e["event"] == "task_started" and e.get("agent") == "tech_lead"]
    assert [e["attempt"] for e in merging] == [1, 1]
    waited = [r for r in activities if r["activity"] == "task_error"]
    assert len(waited) == 1 and waited[0]["details"]["action"] == "wait_for_capacity"
    assert "kept moving" in waited[0]["details"]["error"] and "MainBusy" in waited[0]["details"]["error"]
    # One merge, on top of every rival commit; the remote's main is green at its first-parent merge.
    assert task_merges(remote) == [task.id]
    assert git(remote, "log", "-1", "--format=%s", "main^1").strip() == f"Rival merge {wins}"
    check = tmp_path / "check"
    git(tmp_path, "clone", "-q", str(remote), str(check))
    assert len(merge_commits_green(check, tmp_path)) == 1
    assert git(tmp_path / "a" / "workspace", "rev-parse", "main").strip() == remote_main(remote)
