"""kill -9 of the real daemon in the middle of the merge queue's rebase (``git.integration: rebase``).

To land the kill inside the rebase every time, the first daemon runs git through a shim on its PATH
that adds ``--exec`` to the first ``git rebase`` that replays commits: after the first replayed commit
the real rebase pauses in a real half-done state (the rebase's own directory in the queue's
worktree, the task branch not yet moved, the queue's row not yet told) and the test kills the whole
process tree there. The restarted daemon (plain git) resumes: every task merged exactly once, main
green at every first-parent merge, each merged branch descending from the main it merged into.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from tests.chaos.aim import kill_tree
from tests.chaos.driver import run_to_the_end
from tests.chaos.invariants import all_problems
from tests.chaos.observe import LogTail, proc_children_supported
from tests.chaos.scenario import chaos_config, chaos_script, helper_names, submit_code_tasks, workspace
from tests.conftest import wait_for
from tests.daemon import Daemon
from tests.mainline import git, merge_commits_green

pytestmark = pytest.mark.skipif(not proc_children_supported(), reason="needs /proc/<pid>/task/<tid>/children")


def git_shim(tmp: Path) -> tuple[Path, Path]:
    """A directory holding a ``git`` that pauses the first replaying rebase; the marker it writes."""
    real = shutil.which("git")
    assert real
    shim, marker = tmp / "shim", tmp / "rebase-paused"
    shim.mkdir()
    script = shim / "git"
    script.write_text(f"""#!/bin/sh
if [ "$1" = "rebase" ] && [ "$2" != "--abort" ] && [ ! -e "{marker}" ]; then
  shift
  exec "{real}" rebase --exec "[ -e '{marker}' ] || {{ touch '{marker}'; sleep 60; }}" "$@"
fi
exec "{real}" "$@"
""")
    script.chmod(0o755)
    return shim, marker


@pytest.mark.timeout(300)
def test_kill9_during_the_queue_rebase_resumes_with_main_green_and_one_merge_per_task(
        fake_llm, write_config, tmp_path):
    names = helper_names(3)
    fake_llm.set_script(chaos_script(names))
    config = write_config(fake_llm, chaos_config(max_task_attempts=4, git={"integration": "rebase"},
                                                 agents={"qa": {"workers": 2}}))
    ids = list(submit_code_tasks(config, names).values())
    shim, marker = git_shim(tmp_path)

    daemon = Daemon(config, env={"PATH": f"{shim}{os.pathsep}{os.environ['PATH']}"}).start()
    tail = LogTail(daemon.stdout_path)
    try:
        wait_for(marker.exists, timeout=150, interval=0.02, message="a queue rebase paused half-way")
        queue_git = Path(git(workspace(config), "rev-parse", "--git-common-dir").strip())
        if not queue_git.is_absolute():
            queue_git = workspace(config) / queue_git
        # The rebase is really half-done: its state directory exists in the queue's worktree.
        assert list((queue_git / "worktrees").glob("*/rebase-merge")), "no rebase in progress"
        assert daemon.proc is not None
        kill_tree(daemon.proc.pid)
        assert daemon.wait(10) == -signal.SIGKILL
    finally:
        daemon.stop()
    rebased_before = [e for e in tail.named("merge_queue_rebased")]
    assert not rebased_before  # killed before the branch moved

    time.sleep(0.1)
    running = run_to_the_end(config, ids)  # plain git from here on
    problems = all_problems(config, ids)
    assert not problems, "\n".join(problems)
    ws = workspace(config)
    merges = git(ws, "log", "--first-parent", "--merges", "--format=%(trailers:key=Task-Id,valueonly,separator=)",
                 "main").split()
    assert sorted(merges) == sorted(ids)  # every task merged, each exactly once
    checked = merge_commits_green(ws, tmp_path)
    assert len(checked) == len(ids)
    for sha in checked:  # rebased: each branch descends from the main it merged into
        git(ws, "merge-base", "--is-ancestor", f"{sha}^1", f"{sha}^2")
    assert not git(ws, "stash", "list").strip()
    assert running.tail.named("merge_queue_rebased")  # the resumed queue rebased again, from the branch
