"""TestRunner with real pytest subprocesses: outcomes, parsing, and containment of hostile test code."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ai_agents.errors import TestRunError, TestRunStopped
from ai_agents.testing import TestRunner, parse_test_results

_CHECK = TestRunner(Path("/")).check().data
HAS_BWRAP = _CHECK.get("sandbox") == "bwrap"
# RLIMIT_NPROC never binds uid 0: as root only a pids cgroup stops a fork bomb. Without one
# the test would take the machine's whole pid space for its 3 seconds, so it does not run.
BOMB_CONTAINABLE = os.geteuid() != 0 or bool(_CHECK.get("pids_cgroup"))
REAL_BWRAP = shutil.which("bwrap")
needs_bwrap = pytest.mark.skipif(not HAS_BWRAP, reason="bubblewrap not installed/usable (.ci/install_sandbox.sh)")
MAIN = Path(__file__).resolve().parents[2]


def project(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text))
    return root


def processes_in(root: Path) -> list[str]:
    """Live processes whose working directory is inside ``root`` (what a leak would look like)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and Path(cwd).is_relative_to(root):
            found.append(f"{entry.name} {(entry / 'cmdline').read_bytes()[:80]!r}")
    return found


CALC = {
    "calc.py": "def add(a, b):\n    return a + b\n",
    "tests/test_calc.py": """\
        import pytest
        from calc import add

        def test_add():
            assert add(2, 2) == 4

        def test_wrong():
            assert add(2, 2) == 5, "two and two"

        @pytest.mark.skip(reason="later")
        def test_later():
            pass

        class TestGroup:
            def test_in_class(self):
                raise ValueError("boom in class")
    """,
}


def test_results_from_junit_with_names_and_tracebacks(workspace: Path) -> None:
    result = TestRunner(project(workspace, CALC), timeout=60).run_tests()
    assert (result.outcome, result.passed, result.failed) == ("failed", False, True)
    assert (result.passed_count, result.failed_count, result.skipped, result.test_count) == (1, 2, 1, 4)
    by_name = {f.test_name: f for f in result.failures}
    assert set(by_name) == {"tests/test_calc.py::test_wrong", "tests/test_calc.py::TestGroup::test_in_class"}
    assert "two and two" in by_name["tests/test_calc.py::test_wrong"].error_message
    assert "ValueError: boom in class" in by_name["tests/test_calc.py::TestGroup::test_in_class"].traceback
    assert "1 failed" not in result.output_tail and "2 failed, 1 passed, 1 skipped" in result.output_tail
    assert result.duration > 0 and result.exit_code == 1


def test_specific_test_passes(workspace: Path) -> None:
    result = TestRunner(project(workspace, CALC), timeout=60).run_specific_test("tests/test_calc.py::test_add")
    assert (result.outcome, result.passed, result.failed, result.passed_count) == ("passed", True, False, 1)
    assert result.model_dump()["passed"] is True


def test_import_error_is_a_failure_with_traceback(workspace: Path) -> None:
    project(workspace, {"tests/test_new.py": "from strutil import slug\n\ndef test_slug():\n    assert slug('A b')\n"})
    result = TestRunner(workspace, timeout=60).run_tests()
    assert result.outcome == "failed" and result.errors == 1
    assert "ModuleNotFoundError: No module named 'strutil'" in result.failures[0].traceback
    assert "No module named 'strutil'" in result.failures[0].error_message


def test_a_module_that_does_not_import_fails_the_run_and_the_others_still_run(workspace: Path) -> None:
    # pytest goes on past a collection error (no "Interrupted" stop): the broken module is one error, the
    # tests of the others are run and reported, and the run is red however many of them pass.
    project(workspace, {**CALC,
                        "tests/test_calc.py": "from calc import add\n\ndef test_add():\n    assert add(1, 1) == 2\n",
                        "tests/test_new.py": "from strutil import slug\n\ndef test_slug():\n    assert slug('A b')\n"})
    result = TestRunner(workspace, timeout=60).run_tests()
    assert (result.outcome, result.errors, result.passed_count, result.failed_count) == ("failed", 1, 1, 0)
    assert [f.test_name for f in result.failures] == ["tests/test_new.py"]
    assert "No module named 'strutil'" in result.failures[0].error_message
    assert result.exit_code == 1 and "Interrupted" not in result.output_tail


@pytest.mark.parametrize(("files", "outcome"), [
    ({"tests/test_none.py": "X = 1\n"}, "no_tests"),
    ({"tests/test_skip.py": "import pytest\n\n@pytest.mark.skip\ndef test_a():\n    pass\n"}, "no_tests"),
    ({"conftest.py": "raise RuntimeError('broken conftest')\n", "tests/test_a.py": "def test_a():\n    pass\n"},
     "could_not_run"),
])
def test_no_tests_and_could_not_run(workspace: Path, files: dict[str, str], outcome: str) -> None:
    result = TestRunner(project(workspace, files), timeout=60).run_tests()
    assert result.outcome == outcome and not result.passed and not result.failed


def test_missing_framework_could_not_run(workspace: Path) -> None:
    project(workspace, {"package.json": '{"devDependencies": {"jest": "^29"}}'})
    runner = TestRunner(workspace, timeout=60)
    assert runner.detect_framework() == "jest"
    result = runner.run_tests()  # no node_modules here: jest is not installed
    assert result.outcome == "could_not_run" and not result.passed and not result.failed
    assert "jest" in result.failures[0].error_message
    assert not runner.check().ok


def test_unknown_test_path_could_not_run_and_option_injection_refused(workspace: Path) -> None:
    runner = TestRunner(project(workspace, CALC), timeout=60)
    assert runner.run_specific_test("tests/test_gone.py").outcome == "could_not_run"
    for bad in ("-p evil", "../outside.py", "/etc/passwd", "tests/-x.py"):
        with pytest.raises(TestRunError):
            runner.run_specific_test(bad)


def test_parse_reports_from_text() -> None:
    junit = """<?xml version="1.0"?><testsuites><testsuite name="pytest" tests="3">
      <testcase classname="tests.test_m" name="test_ok" file="tests/test_m.py" line="1"/>
      <testcase classname="tests.test_m" name="test_bad" file="tests/test_m.py" line="4">
        <failure message="AssertionError: nope">tests/test_m.py:5: in test_bad
    assert False
E   AssertionError: nope</failure></testcase>
      <testcase classname="" name="tests.test_broken"><error message="collection failure">ImportError</error>
      </testcase></testsuite></testsuites>"""
    r = parse_test_results(junit, "pytest")
    assert (r.outcome, r.passed_count, r.failed_count, r.errors) == ("failed", 1, 1, 1)
    assert r.failures[0].test_name == "tests/test_m.py::test_bad" and "assert False" in r.failures[0].traceback
    jest = {"numTotalTests": 2, "numPassedTests": 1, "numFailedTests": 1, "numPendingTests": 0,
            "testResults": [{"name": "/w/sum.test.js", "status": "failed", "assertionResults": [
                {"fullName": "sum adds", "status": "passed", "failureMessages": []},
                {"fullName": "sum subtracts", "status": "failed",
                 "failureMessages": ["Error: expect(received).toBe(expected)\n    at sum.test.js:9"]}]}]}
    j = parse_test_results(json.dumps(jest), "jest", Path("/w"))
    assert (j.outcome, j.failed_count) == ("failed", 1)
    assert j.failures[0].test_name == "sum.test.js::sum subtracts" and "toBe" in j.failures[0].error_message
    with pytest.raises(TestRunError, match="not valid XML"):
        parse_test_results("<testsuite", "pytest")


def test_endless_loop_killed_by_timeout(workspace: Path) -> None:
    project(workspace, {"tests/test_loop.py": "def test_forever():\n    while True:\n        pass\n"})
    result = TestRunner(workspace, timeout=3).run_tests()
    assert result.outcome == "timeout" and result.failed and not result.passed
    assert 3 <= result.duration < 10 and "did not finish within 3s" in result.failures[0].error_message
    assert processes_in(workspace) == []


@pytest.mark.skipif(not BOMB_CONTAINABLE, reason="root without a pids cgroup: nothing can contain a fork bomb")
def test_fork_bomb_contained(workspace: Path) -> None:
    project(workspace, {"tests/test_bomb.py": """\
        import os

        def test_bomb():
            while True:
                try:
                    os.fork()
                except OSError:
                    pass
    """})
    result = TestRunner(workspace, timeout=3, max_processes=64).run_tests()
    assert result.outcome == "timeout" and result.failed
    assert processes_in(workspace) == []
    assert any("pids cgroup" in p for p in result.protections) or os.geteuid() != 0


def test_memory_hog_contained(workspace: Path) -> None:
    project(workspace, {"tests/test_hog.py": """\
        def test_hog():
            hoard = []
            while True:
                hoard.append(bytearray(50 * 1024 * 1024))
    """})
    result = TestRunner(workspace, timeout=30, memory_mb=512).run_tests()
    assert result.outcome == "failed" and result.failed_count == 1
    assert "MemoryError" in result.failures[0].traceback


def test_background_process_left_by_tests_is_killed(workspace: Path) -> None:
    project(workspace, {"tests/test_daemonize.py": """\
        import subprocess

        def test_spawn():
            subprocess.Popen(["sleep", "300"], start_new_session=True)
    """})
    result = TestRunner(workspace, timeout=30).run_tests()
    assert result.outcome == "passed"
    assert processes_in(workspace) == []


def test_a_run_its_caller_stops_is_killed_with_what_it_started_and_gives_no_verdict(workspace: Path) -> None:
    project(workspace, {"tests/test_slow.py": """\
        import pathlib
        import subprocess
        import time

        def test_slow():
            subprocess.Popen(["sleep", "300"], start_new_session=True)
            pathlib.Path("started").write_text("yes")
            time.sleep(300)
    """})
    runner = TestRunner(workspace, timeout=120)
    with pytest.raises(TestRunStopped):
        runner.run_tests(stop=lambda: (workspace / "started").exists())
    assert processes_in(workspace) == []
    # A stop that never comes: the run ends as any other, with its verdict.
    project(workspace, {"tests/test_slow.py": "def test_quick():\n    pass\n"})
    assert runner.run_tests(stop=lambda: False).outcome == "passed"


@pytest.mark.parametrize("sandbox", ["auto", "none"])
def test_daemon_environment_invisible(workspace: Path, sandbox: str) -> None:
    fake_key = "sk-test" + "Q" * 30
    project(workspace, {"tests/test_env.py": f"""\
        import os
        from pathlib import Path

        def test_no_secrets():
            assert "OPENAI_API_KEY" not in os.environ
            assert not any("{fake_key}" in v for v in os.environ.values())
            names = {{k for k in os.environ if not k.startswith("PYTEST_")}} - {{"PWD"}}  # pytest, bwrap add these
            assert names == {{"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "PYTHONDONTWRITEBYTECODE",
                              "PYTHONUNBUFFERED", "CI", "NO_COLOR", "FORCE_COLOR"}}
            if Path("/proc/1/cmdline").read_bytes().startswith(b"bwrap"):
                # The daemon's processes are in another pid namespace: nothing to read.
                for environ in Path("/proc").glob("[0-9]*/environ"):
                    assert b"{fake_key}" not in environ.read_bytes()
    """})
    # The daemon (a child process here) has the key; os.environ of this test process is not touched.
    script = f"from ai_agents.testing import TestRunner; print(TestRunner({str(workspace)!r}, timeout=60, " \
             f"sandbox={sandbox!r}).run_tests().model_dump_json())"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=MAIN,
                          env={**os.environ, "OPENAI_API_KEY": fake_key})
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["outcome"] == "passed", result["output_tail"]
    assert result["sandbox"] == ("bwrap" if HAS_BWRAP and sandbox == "auto" else "none")


@needs_bwrap
def test_sandbox_blocks_network_git_and_hidden_paths(workspace: Path, tmp_path: Path) -> None:
    secret_dir = tmp_path / "daemon-data"
    secret_dir.mkdir()
    (secret_dir / "ai_agents.db").write_text("memories")
    (workspace / ".git" / "hooks").mkdir(parents=True)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    project(workspace, {"tests/test_escape.py": f"""\
        import socket
        from pathlib import Path
        import pytest

        def test_no_network():
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.1", {port}), timeout=2)

        def test_git_is_read_only():
            with pytest.raises(OSError):
                Path(".git/hooks/pre-commit").write_text("#!/bin/sh\\nexit 0\\n")

        def test_hidden():
            assert not Path({str(secret_dir / "ai_agents.db")!r}).exists()
            assert not Path("/root/.gitconfig").exists()

        def test_workspace_writable_and_no_capabilities():
            Path("out.txt").write_text("ok")
            assert "CapEff:\t0000000000000000" in Path("/proc/self/status").read_text()
    """})
    try:
        sandboxed = TestRunner(workspace, timeout=60, sandbox="bwrap", hidden_paths=[secret_dir]).run_tests()
        assert sandboxed.outcome == "passed" and sandboxed.passed_count == 4, sandboxed.failures
        assert sandboxed.sandbox == "bwrap" and (workspace / "out.txt").read_text() == "ok"
        # The same tests without the sandbox do reach the network: they are not vacuous.
        bare = TestRunner(workspace, timeout=60, sandbox="none").run_specific_test(
            "tests/test_escape.py::test_no_network")
        assert bare.outcome == "failed" and bare.sandbox == "none"
    finally:
        listener.close()
    assert not (workspace / ".git" / "hooks" / "pre-commit").exists()


def test_sandbox_mandatory_without_bwrap(workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "no-bwrap").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "no-bwrap"))  # as on a machine without it
    runner = TestRunner(project(workspace, CALC), timeout=60, sandbox="bwrap")
    with pytest.raises(TestRunError, match="not installed"):
        runner.run_tests()
    assert not runner.check().ok


def bwrap_logging_to(bin_dir: Path, log: Path, *, fail_probe: bool = False) -> None:
    """A ``bwrap`` first on PATH that notes each start (``probe`` or ``run``) and hands over to the real one;
    with ``fail_probe`` the probe fails as it does where namespaces cannot be made."""
    bin_dir.mkdir()
    refuse = 'echo "bwrap: No permissions to create new namespace" >&2; exit 1' if fail_probe else ""
    (bin_dir / "bwrap").write_text(textwrap.dedent(f"""\
        #!/bin/sh
        last=""; for a in "$@"; do last=$a; done
        if [ "$last" = true ]; then echo probe >> {log}; {refuse}
        else echo run >> {log}; fi
        exec {REAL_BWRAP} "$@"
        """))
    (bin_dir / "bwrap").chmod(0o755)


@needs_bwrap
def test_one_probe_serves_every_runner_that_shares_it(workspace: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon's runners (main workspace, each task worktree, the merge queue) share one SandboxProbe:
    bubblewrap is probed once, not once per worktree."""
    from ai_agents.testing.sandbox import SandboxProbe

    log = tmp_path / "bwrap.log"
    bwrap_logging_to(tmp_path / "bin", log)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    probe = SandboxProbe()
    other = project(tmp_path / "other", CALC)
    for path in (project(workspace, CALC), other, other):
        result = TestRunner(path, timeout=60, sandbox="bwrap", probe=probe).run_specific_test("tests/test_calc.py")
        assert result.sandbox == "bwrap" and (result.passed_count, result.failed_count) == (1, 2)
    assert log.read_text().split() == ["probe", "run", "run", "run"]


@needs_bwrap
def test_a_failed_probe_is_not_kept(workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under ``sandbox: auto`` a failed probe means this run goes without the sandbox; the next run probes again,
    so one passing failure does not turn the sandbox off for the daemon's life."""
    from ai_agents.testing.sandbox import SandboxProbe

    log = tmp_path / "bwrap.log"
    bwrap_logging_to(tmp_path / "failing", log, fail_probe=True)
    monkeypatch.setenv("PATH", f"{tmp_path / 'failing'}:{os.environ['PATH']}")
    probe = SandboxProbe()
    runner = TestRunner(project(workspace, CALC), timeout=60, sandbox="auto", probe=probe)
    assert runner.run_specific_test("tests/test_calc.py").sandbox == "none"
    bwrap_logging_to(tmp_path / "working", log)
    monkeypatch.setenv("PATH", f"{tmp_path / 'working'}:{os.environ['PATH']}")
    assert runner.run_specific_test("tests/test_calc.py").sandbox == "bwrap"
    assert runner.run_specific_test("tests/test_calc.py").sandbox == "bwrap"
    assert log.read_text().split() == ["probe", "probe", "run", "run"]


def test_check(workspace: Path) -> None:
    check = TestRunner(project(workspace, CALC)).check()
    assert check.ok and check.data["framework"] == "pytest" and "pytest runnable" in check.detail


@needs_bwrap
def test_interpreter_under_tmp_stays_visible_in_the_sandbox(tmp_path):
    """A checkout (and its venv) under /tmp: the sandbox's empty /tmp must not hide the interpreter."""
    import shutil

    from ai_agents.testing.sandbox import bwrap_args

    assert str(tmp_path).startswith("/tmp/")  # pytest's tmp_path lives under /tmp here
    fake_prefix = tmp_path / "venv"
    (fake_prefix / "bin").mkdir(parents=True)
    tool = fake_prefix / "bin" / "tool"
    tool.write_text("#!/bin/sh\necho interpreter-visible\n")
    tool.chmod(0o755)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    args = bwrap_args(shutil.which("bwrap"), workspace, [], [], [fake_prefix])
    out = subprocess.run([*args, str(tool)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "interpreter-visible"
    # and everything else that was under /tmp is gone
    other = tmp_path / "secret.txt"
    other.write_text("x")
    probe = subprocess.run([*args, "/bin/sh", "-c", f"test -e {other} && echo seen || echo hidden"],
                           capture_output=True, text=True, timeout=30)
    assert probe.stdout.strip() == "hidden"
