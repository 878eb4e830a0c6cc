"""kill -9 of the real daemon right after its merge queue pushed main to the shared remote
(``git.shared_remote``), before anything else is told: the remote moved, the queue's row and the
local main did not. A git shim on the first daemon's PATH holds the first push of main once the real
push is done, so the kill lands exactly there. The restarted daemon finds the merge on the remote and
merges nothing twice; the remote's main is green at every first-parent merge.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest

from tests.chaos.aim import kill_tree
from tests.chaos.driver import run_to_the_end
from tests.chaos.observe import proc_children_supported
from tests.chaos.scenario import chaos_config, chaos_script, helper_names, submit_code_tasks
from tests.conftest import wait_for
from tests.daemon import Daemon
from tests.mainline import git, merge_commits_green
from tests.merge_queue_remote.nodes import bare_remote, remote_main, task_merges

pytestmark = pytest.mark.skipif(not proc_children_supported(), reason="needs /proc/<pid>/task/<tid>/children")


def push_shim(tmp: Path) -> tuple[Path, Path]:
    """A ``git`` that, after the first push of main really happened, holds (the marker says when)."""
    real = shutil.which("git")
    assert real
    shim, marker = tmp / "shim", tmp / "main-pushed"
    shim.mkdir()
    (shim / "git").write_text(f"""#!/bin/sh
case "$*" in
  push*:refs/heads/main*)
    "{real}" "$@"
    status=$?
    if [ $status -eq 0 ] && [ ! -e "{marker}" ]; then touch "{marker}"; sleep 60; fi
    exit $status;;
esac
exec "{real}" "$@"
""")
    (shim / "git").chmod(0o755)
    return shim, marker


@pytest.mark.slow  # the default suite has the in-process crash (tests/merge_queue_remote/test_shared_remote.py)
@pytest.mark.timeout(300)
def test_kill9_between_the_push_of_main_and_the_database_merges_nothing_twice(fake_llm, write_config, tmp_path):
    remote = bare_remote(tmp_path)
    names = helper_names(2)
    fake_llm.set_script(chaos_script(names))
    config = write_config(fake_llm, chaos_config(max_task_attempts=4, git={
        "repository_url": str(remote), "shared_remote": True}))
    ids = list(submit_code_tasks(config, names).values())
    shim, marker = push_shim(tmp_path)
    start_main = remote_main(remote)

    daemon = Daemon(config, env={"PATH": f"{shim}{os.pathsep}{os.environ['PATH']}"}).start()
    try:
        wait_for(marker.exists, timeout=150, interval=0.02, message="the queue's first push of main")
        assert daemon.proc is not None
        kill_tree(daemon.proc.pid)
        assert daemon.wait(10) == -signal.SIGKILL
    finally:
        daemon.stop()
    pushed = remote_main(remote)
    assert pushed != start_main and len(task_merges(remote)) == 1  # on the remote, nowhere else yet
    first = task_merges(remote)[0]

    running = run_to_the_end(config, ids)  # plain git from here on
    assert sorted(task_merges(remote)) == sorted(ids)  # each task merged exactly once
    resumed = [e for e in running.tail.named("merge_queue_merged") if e.get("resumed")]
    assert [e["task_id"] for e in resumed] == [first] and resumed[0]["commit"] == pushed
    check = tmp_path / "check"
    git(tmp_path, "clone", "-q", str(remote), str(check))
    assert len(merge_commits_green(check, tmp_path)) == len(ids)
    assert git(tmp_path / "workspace", "rev-parse", "main").strip() == remote_main(remote)
