"""Test processes started ahead (TestRunner.warm, testing/started.py), with real sandboxed pytest runs.

A run takes a process started ahead only if the sandbox it would be made of now is exactly the one the
process was made in; otherwise, or if the process has ended, the run starts its own. Either way the
verdict is the same as a run started at once, and nothing of a process started ahead outlives its runner.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from ai_agents.testing import TestRunner
from ai_agents.testing.runner import can_raise_priority
from ai_agents.testing.started import Warmer
from tests.conftest import wait_for
from tests.workspace.test_ws_runner import needs_bwrap, processes_in, project
from tests.workspace.test_ws_site_view import plant

CALC = {
    "calc.py": "def add(a, b):\n    return a + b\n",
    "tests/test_calc.py": "from calc import add\n\n\ndef test_add():\n    assert add(2, 2) == 4\n",
}
NICE = {
    "tests/test_nice.py": """\
        import os

        def test_runs_at_the_runs_priority():
            assert os.nice(0) == int(open("expected_nice").read())
        """,
}


pytestmark = needs_bwrap  # only in bubblewrap's sandbox: see the last test


def spare_pids(runner: TestRunner) -> list[int]:
    """The process group of the process ``runner`` holds started ahead (empty when it holds none)."""
    spare = runner._spare
    return [] if spare is None else [spare.process.proc.pid]


def test_a_run_takes_the_process_started_ahead_and_judges_it_the_same(tmp_path):
    ws = project(tmp_path / "ws", CALC)
    runner = TestRunner(ws)
    cold = runner.run_tests()
    runner.warm()
    assert processes_in(ws), "a process waits in the workspace, started ahead"
    warm = runner.run_tests()
    assert warm.started_ahead and not cold.started_ahead
    assert (warm.outcome, warm.passed_count, warm.failed_count) == (cold.outcome, cold.passed_count,
                                                                   cold.failed_count) == ("passed", 1, 0)
    assert warm.protections == cold.protections
    again = runner.run_tests()  # taken once: the next run starts its own
    assert again.passed and not again.started_ahead
    assert not processes_in(ws)


def test_the_run_sees_the_workspace_as_it_is_when_it_runs_not_when_the_process_started(tmp_path):
    ws = project(tmp_path / "ws", CALC)
    runner = TestRunner(ws)
    runner.warm()
    (ws / "calc.py").write_text("def add(a, b):\n    return a - b\n")  # written after the start ahead
    (ws / "tests" / "test_more.py").write_text("from calc import add\n\ndef test_zero():\n    assert add(0, 0) == 0\n")
    result = runner.run_tests(expected=["tests/test_calc.py::test_add", "tests/test_more.py::test_zero"])
    assert result.started_ahead
    assert result.outcome == "failed" and result.passed_count == 1 and result.failed_count == 1
    assert [f.test_name for f in result.failures] == ["tests/test_calc.py::test_add"]


def test_a_workspace_made_again_at_the_same_path_gets_a_new_process(tmp_path):
    """A worktree removed and made again: the bind of the old directory would show the old files."""
    ws = project(tmp_path / "ws", CALC)
    runner = TestRunner(ws)
    runner.warm()
    shutil.rmtree(ws)
    project(ws, {**CALC, "calc.py": "def add(a, b):\n    return 5\n"})
    result = runner.run_tests()
    assert not result.started_ahead
    assert result.outcome == "failed" and "assert 5 == 4" in result.failures[0].error_message


def test_a_directory_the_daemon_hides_made_after_the_start_is_hidden_from_the_run(tmp_path):
    secret = tmp_path / "ws" / "data"
    ws = project(tmp_path / "ws", {**CALC, "tests/test_secret.py": """\
        import os

        def test_cannot_see_the_daemons_data():
            assert not os.path.exists("data/keys.txt")
        """})
    runner = TestRunner(ws, hidden_paths=[secret])
    runner.warm()
    secret.mkdir()
    (secret / "keys.txt").write_text("sk-not-a-real-key\n")
    result = runner.run_tests()
    if result.sandbox == "bwrap":  # hidden by a tmpfs over it: only bubblewrap can
        assert not result.started_ahead, "the sandbox changed: the process started ahead must not be used"
        assert result.passed, result.failures


def test_a_lock_changed_after_the_start_changes_what_the_tests_may_import(tmp_path):
    """A process started when the lock pinned a package must not let the tests import it once it does not."""
    env = tmp_path / "project-env"
    plant(env, "sneaky", "1.0", "VALUE = 'sneaky'\n")
    pin = "sneaky==1.0 --hash=sha256:" + "0" * 64 + "\n"
    ws = project(tmp_path / "ws", {"requirements.lock": pin, "tests/test_imports.py": """\
        def test_import_sneaky():
            import sneaky
            assert sneaky.VALUE == "sneaky"
        """})
    runner = TestRunner(ws, project_env=env)
    assert runner.run_tests().passed  # pinned: importable
    runner.warm()
    (ws / "requirements.lock").write_text("# nothing pinned\n")
    result = runner.run_tests()
    assert not result.started_ahead
    assert result.outcome == "failed" and "No module named 'sneaky'" in result.failures[0].error_message


def test_a_process_started_ahead_that_died_is_replaced(tmp_path):
    ws = project(tmp_path / "ws", CALC)
    runner = TestRunner(ws)
    runner.warm()
    [pid] = spare_pids(runner)
    os.killpg(pid, signal.SIGKILL)
    wait_for(lambda: runner._spare.process.proc.poll() is not None, timeout=10)
    result = runner.run_tests()
    assert result.passed and not result.started_ahead


def test_cool_ends_the_process_and_leaves_nothing(tmp_path):
    ws = project(tmp_path / "ws", CALC)
    runner = TestRunner(ws)
    before = set(Path(os.environ.get("TMPDIR", "/tmp")).glob("ai-agents-*"))
    runner.warm()
    assert processes_in(ws)
    runner.cool()
    assert not processes_in(ws)
    assert set(Path(os.environ.get("TMPDIR", "/tmp")).glob("ai-agents-*")) <= before  # its directories too
    assert not runner.run_tests().started_ahead


@pytest.mark.parametrize("nice", [0, 10])
def test_the_run_has_its_own_priority_not_the_lowest_it_waited_at(tmp_path, nice):
    ws = project(tmp_path / "ws", {**NICE, "expected_nice": str(os.nice(0) + nice)})
    runner = TestRunner(tmp_path).at(ws, nice=nice)
    runner.warm()
    if nice == 0 and can_raise_priority():  # it waits at the lowest priority; its run has the daemon's
        assert os.getpriority(os.PRIO_PGRP, spare_pids(runner)[0]) == 19
    result = runner.run_tests()
    assert result.started_ahead and result.passed, result.failures


def test_the_warmer_thread_starts_it_and_the_caller_does_not_wait(tmp_path):
    ws = project(tmp_path / "ws", CALC)
    warmer = Warmer()
    try:
        runner = TestRunner(ws, warmer=warmer)
        runner.warm()
        wait_for(lambda: spare_pids(runner), timeout=20)
        result = runner.run_tests()
        assert result.passed and result.started_ahead
        runner.warm()
        runner.cool()  # asked for and called off: whatever the thread started is ended
        time.sleep(0.5)
        wait_for(lambda: not processes_in(ws), timeout=20)
        assert not spare_pids(runner)
    finally:
        warmer.close()
    runner.warm()  # closed: started in the caller's thread
    assert spare_pids(runner)
    runner.cool()


def test_a_process_started_ahead_sees_nothing_of_the_run_before(tmp_path):
    """Each run its own sandbox: what a run leaves in its /tmp or running in the background is gone."""
    ws = project(tmp_path / "ws", {"tests/test_leave.py": """\
        import os
        import subprocess

        def commands():
            found = []
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    found.append(open(f"/proc/{pid}/cmdline", "rb").read())
                except OSError:
                    pass
            return found

        def test_leave_traces():
            if os.path.exists("second"):
                assert not os.path.exists("/tmp/left-behind")
                assert not [c for c in commands() if c.startswith(b"sleep")]
            else:
                open("/tmp/left-behind", "w").write("x")
                subprocess.Popen(["sleep", "60"], start_new_session=True)
        """})
    runner = TestRunner(ws)
    runner.warm()
    assert runner.run_tests().passed
    runner.warm()
    (ws / "second").write_text("")
    result = runner.run_tests()
    assert result.started_ahead and result.passed, result.failures


def test_without_bubblewrap_nothing_is_started_ahead(tmp_path):
    """Without its own pid namespace, any test code run meanwhile could find a waiting process (same user)
    and write into its configuration pipe before the daemon: no process waits there."""
    ws = project(tmp_path / "ws", CALC)
    runner = TestRunner(ws, sandbox="none")
    runner.warm()
    assert not spare_pids(runner) and not processes_in(ws)
    result = runner.run_tests()
    assert result.passed and not result.started_ahead
