"""Fixtures for the LLM tests: a real fake server, a real SQLite store, real SDK clients."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from ai_agents.config.live import LiveConfig
from ai_agents.config.models import Settings
from ai_agents.llm import LLMClient, RetryPolicy
from ai_agents.memory import Database, MemoryStore
from tests.fakes.llm_server import FakeLLMServer

FAKE_KEY = "sk-test-fake-0000"


class RecordingSleep:
    """Injected as the retry policy's sleep: records each wait, waits nothing."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def provider(kind: str, server: FakeLLMServer, **extra: Any) -> dict[str, Any]:
    """One provider entry pointing at ``server``."""
    entry: dict[str, Any] = {
        "provider": kind,
        "model": "claude-haiku-4-5" if kind == "anthropic" else "gpt-4o-mini",
        "api_key": FAKE_KEY,
        "base_url": server.base_url if kind == "anthropic" else server.openai_base_url,
        "timeout": 2.0,
        "requests_per_minute": 60_000,
    }
    entry.update(extra)
    return entry


def make_settings(llm: dict[str, Any], **sections: Any) -> Settings:
    data: dict[str, Any] = {"llm": {"max_retries": 2, "retry_max_wait": 5.0, **llm}, "logging": {"file": None}}
    data.update(sections)
    return Settings.model_validate(data)


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as srv:
        yield srv


@pytest.fixture
def memory(tmp_path: Path) -> Iterator[MemoryStore]:
    db = Database(tmp_path / "agents.db")
    yield MemoryStore(db)
    db.close()


@pytest.fixture
def sleeps() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def make_client(memory: MemoryStore, sleeps: RecordingSleep) -> Iterator[Callable[..., LLMClient]]:
    """``make_client(settings)`` -> a real LLMClient (retry base 10 ms, recorded sleeps)."""
    clients: list[LLMClient] = []

    def build(settings: Settings, *, jitter: Callable[[float, float], float] = lambda a, b: 0.0) -> LLMClient:
        client = LLMClient.from_config(LiveConfig(settings), memory,
                                       retry=RetryPolicy(base=0.01, sleep=sleeps, jitter=jitter))
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """For tests that call configure_logging: put the process-wide logging back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)
    structlog.reset_defaults()


def rows(memory: MemoryStore) -> list[dict[str, Any]]:
    return memory.db.query("SELECT * FROM llm_calls ORDER BY id")


@pytest.fixture
def entry() -> Callable[..., dict[str, Any]]:
    """``entry(kind, server, **overrides)`` -> one provider config entry."""
    return provider


@pytest.fixture
def settings_for() -> Callable[..., Settings]:
    """``settings_for(llm_dict, **sections)`` -> validated Settings."""
    return make_settings


@pytest.fixture
def llm_rows(memory: MemoryStore) -> Callable[[], list[dict[str, Any]]]:
    return lambda: rows(memory)
