"""type: ci_cd: status_command, status_url against a local HTTP server, and nothing configured."""

from __future__ import annotations

import json
import shlex
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ai_agents.config.models import CiCdDeployConfig, DeploymentConfig
from ai_agents.deployment import CommandRunner, DeploymentFailedError, DeploymentManager

A, B = "aaaa1111", "bbbb2222"


def ci_manager(tmp_path: Path, runner: CommandRunner, *, rollback_command: str | None = None,
               **ci: object) -> DeploymentManager:
    values: dict[str, object] = {"poll_interval": 0.05, "poll_timeout": 5, **ci}
    cfg = DeploymentConfig(type="ci_cd", command_timeout=10, ci_cd=CiCdDeployConfig(**values))
    return DeploymentManager(cfg, workdir=tmp_path, state=None, runner=runner,
                             ci_cd_rollback_command=rollback_command)


def test_status_command_success(tmp_path: Path, runner: CommandRunner) -> None:
    seen = tmp_path / "seen"
    manager = ci_manager(tmp_path, runner, status_command=f"echo {{commit}} >> {shlex.quote(str(seen))}")
    record = manager.deploy(A)
    assert record.status == "succeeded" and "succeeded (after 1 polls)" in record.detail
    assert seen.read_text().split() == [A]
    assert [s.phase for s in record.steps] == ["poll"] and record.steps[0].exit_code == 0


def test_status_command_failure_fails_the_deploy_without_rolling_back(tmp_path: Path,
                                                                      runner: CommandRunner) -> None:
    manager = ci_manager(tmp_path, runner, status_command="echo 'job test failed'; exit 3")
    with pytest.raises(DeploymentFailedError, match="pipeline for aaaa1111 failed: job test failed") as failed:
        manager.deploy(A)
    assert failed.value.record.rolled_back_to is None and failed.value.record.steps[0].exit_code == 3
    assert manager.check_status().state == "failed"


def test_status_command_pending_then_success(tmp_path: Path, runner: CommandRunner) -> None:
    counter = shlex.quote(str(tmp_path / "count"))
    script = (f"n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; "
              "[ $n -ge 3 ] && { echo done; exit 0; }; echo running; exit 75")
    record = ci_manager(tmp_path, runner, status_command=script).deploy(A)
    assert "after 3 polls" in record.detail
    assert (tmp_path / "count").read_text().strip() == "3"
    assert len(record.steps) == 1 and "done" in record.steps[0].output_tail  # only the verdict is recorded


def test_status_command_still_pending_at_poll_timeout_fails(tmp_path: Path, runner: CommandRunner) -> None:
    manager = ci_manager(tmp_path, runner, status_command="exit 75", poll_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(DeploymentFailedError, match=r"still pending after 0\.3s"):
        manager.deploy(A)
    assert time.monotonic() - started < 3


def test_a_stop_request_ends_the_wait(tmp_path: Path, runner: CommandRunner) -> None:
    stop = threading.Event()
    cfg = DeploymentConfig(type="ci_cd", ci_cd=CiCdDeployConfig(status_command="exit 75", poll_interval=30))
    manager = DeploymentManager(cfg, workdir=tmp_path, state=None, runner=runner, stop=stop)
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    with pytest.raises(DeploymentFailedError, match="stopped while waiting"):
        manager.deploy(A)
    assert time.monotonic() - started < 5


class _Pipeline:
    """Answers GET /status/<commit>: `pending` replies first, then `final`."""

    def __init__(self, pending: int, final: dict[str, str] | None, code: int = 200):
        self.pending, self.final, self.code = pending, final, code
        self.paths: list[str] = []


Served = tuple[ThreadingHTTPServer, _Pipeline]


@pytest.fixture
def pipeline_server() -> Iterator[Served]:
    state = _Pipeline(0, {"status": "success"})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.paths.append(self.path)
            pending = len(state.paths) <= state.pending
            body = {"status": "pending"} if pending else state.final
            payload = json.dumps(body).encode() if body is not None else b"<html>ok</html>"
            self.send_response(200 if pending else state.code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            return  # keep test output clean; requests are asserted through state.paths

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server, state
    server.shutdown()
    server.server_close()


def _url(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/status/{{commit}}"


def test_status_url_pending_then_success(tmp_path: Path, runner: CommandRunner, pipeline_server: Served) -> None:
    server, state = pipeline_server
    state.pending = 2
    record = ci_manager(tmp_path, runner, status_url=_url(server)).deploy(A)
    assert state.paths == [f"/status/{A}"] * 3
    assert "after 3 polls" in record.detail
    step = record.steps[0]
    assert step.target == "http" and step.exit_code is None and "'success'" in step.output_tail


def test_status_url_failure(tmp_path: Path, runner: CommandRunner, pipeline_server: Served) -> None:
    server, state = pipeline_server
    state.final = {"status": "failure"}
    with pytest.raises(DeploymentFailedError, match="failed: HTTP 200, status 'failure'"):
        ci_manager(tmp_path, runner, status_url=_url(server)).deploy(A)


def test_status_url_2xx_without_json_status_is_success_and_401_is_failure(
        tmp_path: Path, runner: CommandRunner, pipeline_server: Served) -> None:
    server, state = pipeline_server
    state.final = None
    record = ci_manager(tmp_path, runner, status_url=_url(server)).deploy(A)
    assert "2xx means success" in record.steps[0].output_tail
    state.code = 401
    with pytest.raises(DeploymentFailedError, match="HTTP 401"):
        ci_manager(tmp_path, runner, status_url=_url(server)).deploy(B)


def test_no_status_configured_records_a_triggered_deploy(tmp_path: Path, runner: CommandRunner) -> None:
    manager = ci_manager(tmp_path, runner)
    record = manager.deploy(A)
    assert record.status == "succeeded" and record.steps == []
    assert record.detail.startswith("triggered (pushed)") and "not checked" in record.detail
    assert manager.check().ok


def test_rollback_without_a_command_is_honest_about_doing_nothing(tmp_path: Path, runner: CommandRunner) -> None:
    manager = ci_manager(tmp_path, runner)
    manager.deploy(A)
    manager.deploy(B)
    with pytest.raises(DeploymentFailedError, match=f"rollback to {A} not performed") as failed:
        manager.rollback()
    record = failed.value.record
    assert record.steps == [] and "reverting the commit" in record.detail
    status = manager.check_status()
    assert (status.state, status.current_commit) == ("failed", B)  # nothing moved


def test_rollback_runs_the_configured_command_with_the_previous_commit(tmp_path: Path,
                                                                       runner: CommandRunner) -> None:
    out = tmp_path / "rolled"
    manager = ci_manager(tmp_path, runner, rollback_command=f"echo {{commit}} > {shlex.quote(str(out))}")
    manager.deploy(A)
    manager.deploy(B)
    record = manager.rollback()
    assert out.read_text().strip() == A and record.status == "succeeded"
    assert manager.check_status().current_commit == A
