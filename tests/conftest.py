"""Shared fixtures: a fake LLM server, configs in tmp dirs, a built daemon, waiting helpers."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakes.llm_server import FakeLLMServer

FAKE_KEY = "sk-" + "test-fake-key-0000000000000000"  # joined: no key-shaped literal in git
REPO = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="also run the long variants (soak, 10-kill chaos)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="long variant: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in extra.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def base_config(tmp: Path, llm_base_url: str | None) -> dict[str, Any]:
    llm: dict[str, Any] = {"provider": "openai", "model": "gpt-4o-mini", "api_key": FAKE_KEY,
                           "base_url": llm_base_url, "timeout": 10, "max_retries": 2, "retry_max_wait": 2,
                           "requests_per_minute": 100000, "cache": {"enabled": False}}
    return {
        "company": {"name": "Test Co", "mission": "Test the daemon.", "strategy": "Small steps.",
                    "goals": ["A tested string helper"]},
        "llm": llm,
        "orchestrator": {"check_interval": 0.5, "heartbeat_interval": 0.5, "task_timeout": 60,
                         "max_new_tasks": 3, "shutdown_grace": 5, "generate_when_idle": False},
        "file_system": {"workspace_path": str(tmp / "workspace"), "backup_dir": str(tmp / "backups")},
        "memory": {"database_path": str(tmp / "data" / "agents.db")},
        "logging": {"file": str(tmp / "data" / "logs" / "agents.log"), "level": "INFO"},
        "testing": {"timeout": 60},
        "deployment": {"enabled": False},
    }


@pytest.fixture
def fake_llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    def write(fake: FakeLLMServer | None = None, extra: dict[str, Any] | None = None,
              path: Path | None = None) -> Path:
        data = deep_merge(base_config(tmp_path, fake.openai_base_url if fake else None), extra or {})
        target = path or tmp_path / "config.yaml"
        target.write_text(yaml.safe_dump(data, sort_keys=False))
        return target
    return write


def wait_for(condition: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05,
             message: str = "condition") -> Any:
    """Poll until ``condition()`` is truthy; fail the test with ``message`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


@pytest.fixture
def build(write_config: Callable[..., Path]) -> Iterator[Callable[..., Any]]:
    """Build the real daemon (``ai_agents.app.build_app``) from a config; stopped at teardown."""
    from ai_agents.app import build_app
    from ai_agents.config import load_config
    from ai_agents.logging_setup import Redactor, configure_logging

    apps: list[Any] = []

    def make(fake: FakeLLMServer | None = None, extra: dict[str, Any] | None = None, start: bool = True) -> Any:
        path = write_config(fake, extra)
        settings = load_config(path)
        redactor = Redactor(settings.secret_values())
        configure_logging(settings.logging, redactor)  # JSON lines into the config's log file
        app = build_app(settings, path, redactor)
        apps.append(app)
        if start:
            app.start()
        return app

    yield make
    for app in apps:
        if app.orchestrator.scheduler.running or not app.orchestrator.stop_event.is_set():
            app.stop()


@pytest.fixture(scope="session")
def pg_server(request: pytest.FixtureRequest) -> Any:
    """A throwaway PostgreSQL server for the session (tests/pg.py), or a skip saying why not."""
    from tests.pg import server_or_skip

    return server_or_skip(request)
