"""CommandRunner: real subprocesses, timeouts that kill the whole group, a minimal env."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from ai_agents.deployment import CommandRunner, minimal_env

# A broken kill would hang these tests: fail them fast instead.
pytestmark = pytest.mark.timeout(15)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child of an exited shell is reparented and reaped quickly, but may be a zombie for a moment.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def test_runs_a_shell_string_and_an_argv_capturing_both_streams(runner: CommandRunner, tmp_path: Path) -> None:
    result = runner.run("echo out; echo err >&2; exit 3", cwd=tmp_path)
    assert (result.exit_code, result.timed_out, result.ok) == (3, False, False)
    assert "out" in result.output and "err" in result.output

    argv = runner.run(["pwd"], cwd=tmp_path)
    assert argv.ok and argv.output.strip() == str(tmp_path)


def test_a_hanging_command_and_its_children_are_killed_at_the_timeout(runner: CommandRunner,
                                                                       tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    started = time.monotonic()
    # The background sleep is a grandchild in the same process group: it must die too.
    result = runner.run(f"sleep 60 & echo $! > {pid_file}; echo waiting; wait", timeout=0.5)
    elapsed = time.monotonic() - started

    assert result.timed_out and not result.ok
    assert result.exit_code < 0  # ended by a signal
    assert "waiting" in result.output and "killed after 0.5s timeout" in result.output
    assert elapsed < 5
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 3
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def test_a_command_ignoring_sigterm_gets_sigkill(runner: CommandRunner, tmp_path: Path) -> None:
    pid_file = tmp_path / "shell.pid"
    started = time.monotonic()
    try:
        result = runner.run(f"echo $$ > {pid_file}; trap '' TERM; while :; do sleep 0.1; done", timeout=0.3)
        assert result.timed_out and result.exit_code == -9
        assert time.monotonic() - started < 5
    finally:
        # If the runner's kill is broken, do not leave the loop running after the test.
        if pid_file.exists() and _alive(int(pid_file.read_text())):
            os.killpg(int(pid_file.read_text()), signal.SIGKILL)


def test_output_is_truncated_to_its_tail(tmp_path: Path) -> None:
    runner = CommandRunner(minimal_env(os.environ), max_output=1000)
    result = runner.run("seq 1 5000")
    assert result.ok
    assert result.output.startswith("[... ") and "bytes truncated" in result.output
    assert result.output.rstrip().endswith("5000") and "\n1\n" not in result.output


def test_a_missing_executable_reads_like_the_shell_says_it(runner: CommandRunner) -> None:
    result = runner.run(["/nonexistent/deploy-tool", "x"])
    assert result.exit_code == 127 and "deploy-tool" in result.output


def test_minimal_env_passes_what_ssh_needs_and_no_credentials() -> None:
    source = {"PATH": "/usr/bin:/bin", "HOME": "/home/x", "LANG": "C.UTF-8", "SSH_AUTH_SOCK": "/tmp/agent",
              "OPENAI_API_KEY": "sk-" + "proj-abcdefghijklmnopqrstuvwx", "GITHUB_TOKEN": "ghp_x", "AWS_SECRET": "y",
              "PYTHONPATH": "/x", "APP_MODE": "prod"}
    # Asking for a credential by name does not pass it on; other extra names are passed.
    env = minimal_env(source, extra=["GITHUB_TOKEN", "APP_MODE"])
    assert env == {"PATH": "/usr/bin:/bin", "HOME": "/home/x", "LANG": "C.UTF-8", "SSH_AUTH_SOCK": "/tmp/agent",
                   "APP_MODE": "prod"}


def test_the_child_sees_only_the_minimal_env(tmp_path: Path) -> None:
    source = {**os.environ, "OPENAI_API_KEY": "sk-" + "proj-abcdefghijklmnopqrstuvwx", "HOME": str(tmp_path)}
    result = CommandRunner(minimal_env(source)).run(["env"])
    names = {line.split("=", 1)[0] for line in result.output.splitlines() if "=" in line}
    assert result.ok and "PATH" in names and "HOME" in names
    assert "OPENAI_API_KEY" not in names and "sk-proj" not in result.output
