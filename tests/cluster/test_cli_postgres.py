"""The CLI on a PostgreSQL store: submit, tasks, status (with the nodes) and doctor read the shared
database; the password comes from the environment and is never printed."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.fakes.llm_server import FakeLLMServer


@pytest.mark.slow  # status on PostgreSQL is also checked by the default test_three_nodes_code.py
def test_cli_commands_on_postgres_never_print_the_password(pg_server: Any, fake_llm: FakeLLMServer,
                                                           write_config: Callable[..., Path]) -> None:
    password = "pw-" + "Zq8" * 6  # the test server trusts local connections: any password is accepted
    url = pg_server.new_database("cli").replace("agents@", "agents:${AI_AGENTS_DB_PASSWORD}@")
    config = write_config(fake_llm, {"memory": {"database_url": url}, "node": {"id": "cli-node"}})
    env = {**os.environ, "AI_AGENTS_DB_PASSWORD": password}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(REPO / "main.py"), *args, "--config", str(config)], cwd=REPO,
                              capture_output=True, text=True, timeout=60, env=env)

    submitted = run("submit", "Shared analysis", "--type", "analysis")
    assert submitted.returncode == 0, submitted.stderr
    listed = run("tasks")
    assert "Shared analysis" in listed.stdout
    status = run("status")
    assert status.returncode == 0, status.stderr
    assert "database:  postgresql://agents:***@127.0.0.1" in status.stdout
    assert "queued 1" in status.stdout
    doctor = run("doctor")
    assert "database" in doctor.stdout and "postgresql://agents:***@" in doctor.stdout
    for out in (submitted, listed, status, doctor):
        assert password not in out.stdout + out.stderr
    assert not (config.parent / "data" / "agents.db").exists()  # the SQLite file was never made
