"""Dashboard fixtures: a real SQLite store with hostile rows, a real server on a free port, a tiny HTTP client."""

from __future__ import annotations

import http.client
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from ai_agents.config import load_config
from ai_agents.config.models import Settings
from ai_agents.memory import Database, MemoryStore, TaskStore
from tests.conftest import FAKE_KEY

XSS_TITLE = 'Fix <script>window.__xss = 1</script><img src=x onerror="window.__xss = 2"> "quotes" & more'
# A GitHub-token-shaped string, assembled at run time (no key-shaped literal is tracked).
PLANTED_TOKEN = "gh" + "p_" + "Z" * 36
DASHBOARD_TOKEN = "dash-" + "t0ken-" * 4


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: str


@dataclass
class Client:
    host: str
    port: int
    headers: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, path: str, form: dict[str, str] | None = None,
                headers: dict[str, str] | None = None) -> Response:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=20)
        body = urlencode(form) if form is not None else None
        hdrs = {**self.headers, **(headers or {})}
        if body is not None:
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        out = Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode())
        conn.close()
        return out

    def get(self, path: str, **kw: Any) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, form: dict[str, str], **kw: Any) -> Response:
        return self.request("POST", path, form, **kw)


@pytest.fixture
def dash_settings(write_config: Callable[..., Path]) -> Callable[..., Settings]:
    def make(dashboard: dict[str, Any] | None = None) -> Settings:
        return load_config(write_config(None, {"dashboard": dashboard or {}}))
    return make


def seed(settings: Settings) -> dict[str, str]:
    """A store with the rows the pages show: hostile title, planted secrets, a pending deploy approval."""
    db = Database(settings.memory.database_path)
    tasks, memory = TaskStore(db), MemoryStore(db)
    hostile = tasks.create("code", XSS_TITLE, "desc <b>bold?</b>")
    secret = tasks.create("code", "Task whose error quotes secrets")
    # Written straight to the row (no store-side redaction): the dashboard must redact on its own.
    db.execute("UPDATE tasks SET status = 'failed', error = ? WHERE id = ?",
               (f"provider said: bad key {FAKE_KEY}; token {PLANTED_TOKEN}", secret.id))
    db.execute("INSERT INTO activity_logs (agent_name, activity, details, timestamp, task_id) "
               "VALUES ('developer', 'code_tested', ?, '2026-01-01T00:00:00+00:00', ?)",
               (f'{{"output": "{PLANTED_TOKEN}", "title": "<svg onload=alert(1)>"}}', secret.id))
    gated = tasks.create("code", "Gated deploy task")
    tasks.request_approval(gated.id, "deploy", {"merge_commit": "a" * 40, "action": "deploy"})
    memory.log_activity("developer", "code_committed", {"commit": "b" * 40}, task_id=gated.id)
    db.close()
    return {"hostile": hostile.id, "secret": secret.id, "gated": gated.id}


@pytest.fixture
def serve() -> Iterator[Callable[..., Client]]:
    from ai_agents.dashboard import DashboardServer

    servers: list[DashboardServer] = []

    def start(settings: Settings, listen: str = "127.0.0.1:0") -> Client:
        server = DashboardServer(settings, listen)
        server.start()
        servers.append(server)
        return Client("127.0.0.1", server.address[1])

    yield start
    for s in servers:
        s.stop()
