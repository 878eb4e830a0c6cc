"""The dashboard over real HTTP, no browser: escaping, redaction, authentication, CSRF, approvals, paging."""

from __future__ import annotations

import re

import pytest

from ai_agents.errors import ConfigError
from ai_agents.memory import Database, MemoryStore, TaskStore
from tests.conftest import FAKE_KEY
from tests.dashboard.conftest import DASHBOARD_TOKEN, PLANTED_TOKEN, seed

PAGES = ("/", "/tasks", "/charts", "/approvals")


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert match, "no CSRF field in the page"
    return match.group(1)


def test_hostile_text_is_escaped_and_secrets_never_rendered(dash_settings, serve):
    settings = dash_settings()
    ids = seed(settings)
    client = serve(settings)
    paths = [*PAGES, f"/tasks?q={ids['secret']}", *(f"/tasks/{i}" for i in ids.values()),
             f"/commit/{'a' * 40}?task={ids['gated']}"]
    for path in paths:
        r = client.get(path)
        assert r.status == 200, (path, r.body[:300])
        assert FAKE_KEY not in r.body and PLANTED_TOKEN not in r.body, path
        assert "<script>window" not in r.body and "<img src=x" not in r.body and "<svg onload" not in r.body, path
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["x-frame-options"] == "DENY"
    task_page = client.get(f"/tasks/{ids['hostile']}").body
    assert "Fix &lt;script&gt;window.__xss = 1&lt;/script&gt;&lt;img src=x onerror=&quot;" in task_page
    assert "&lt;b&gt;bold?&lt;/b&gt;" in task_page
    secret_page = client.get(f"/tasks/{ids['secret']}").body
    assert "[REDACTED]" in secret_page and "&lt;svg onload=alert(1)&gt;" in secret_page
    # What the daemon records in its heartbeat: last cycle, restart-only edits waiting (when present).
    db = Database(settings.memory.database_path)
    MemoryStore(db).set_state("heartbeat", {"pid": 4242, "loop_at": "2026-01-01T00:00:00+00:00",
                                            "restart_required": ["git.branch", "memory.database_path"]})
    overview = client.get("/").body
    assert "<dt>config waiting for a restart</dt><dd><span class=\"bad\">git.branch, memory.database_path" in overview
    assert "<dt>pid</dt><dd>4242</dd>" in overview and "last main-loop cycle" in overview
    # The overview's pending-approval count and the approvals page's "would" line.
    assert "1 waiting for approval" in client.get("/").body
    approvals = client.get("/approvals").body
    assert f'action="/approvals/{ids["gated"]}/approve"' in approvals
    assert "would: deploy commit aaaaaaaaaaaa" in approvals


def test_non_loopback_listen_needs_a_token_and_every_request_is_authenticated(dash_settings, serve):
    from ai_agents.dashboard import DashboardServer

    with pytest.raises(ConfigError, match=re.escape("dashboard.listen '0.0.0.0:8080' is not loopback")):
        dash_settings({"listen": "0.0.0.0:8080"})
    with pytest.raises(ConfigError, match=re.escape("not loopback, without dashboard.token")):
        DashboardServer(dash_settings(), "0.0.0.0:0")

    settings = dash_settings({"token": DASHBOARD_TOKEN})
    seed(settings)
    client = serve(settings, "0.0.0.0:0")
    for path in (*PAGES, "/static/app.js", "/tasks/nothing"):
        r = client.get(path)
        assert r.status == 401 and 'name="token"' in r.body, path
        assert "Gated deploy task" not in r.body
    assert client.get("/", headers={"Authorization": "Bearer wrong-token-0000000000"}).status == 401
    assert client.get("/", headers={"Authorization": f"Bearer {DASHBOARD_TOKEN}"}).status == 200

    assert client.post("/login", {"token": "wrong-token-0000000000", "next": "/tasks"}).status == 401
    login = client.post("/login", {"token": DASHBOARD_TOKEN, "next": "//evil.example/x"})
    assert login.status == 303 and login.headers["location"] == "/"  # no open redirect
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and DASHBOARD_TOKEN not in cookie
    session = {"Cookie": cookie.split(";", 1)[0]}
    page = client.get("/approvals", headers=session)
    assert page.status == 200 and "Gated deploy task" in page.body
    # The token itself never appears in a page either.
    assert DASHBOARD_TOKEN not in page.body
    # A state change with no session is refused before anything else, even with a valid CSRF value.
    r = client.post("/approvals/x/approve", {"csrf": csrf_of(page.body)})
    assert r.status == 401


def test_approve_needs_csrf_and_does_what_the_cli_does(dash_settings, serve):
    settings = dash_settings()
    ids = seed(settings)
    client = serve(settings)
    db = Database(settings.memory.database_path)
    tasks, memory = TaskStore(db), MemoryStore(db)
    gated = ids["gated"]

    assert client.post(f"/approvals/{gated}/approve", {"next": "/approvals"}).status == 403
    token = csrf_of(client.get("/approvals").body)
    assert client.post(f"/approvals/{gated}/approve", {"csrf": "0" * 64}).status == 403
    cross = client.post(f"/approvals/{gated}/approve", {"csrf": token},
                        headers={"Origin": "http://evil.example"})
    assert cross.status == 403
    assert tasks.approval_status(gated, "deploy") == "pending"

    ok = client.post(f"/approvals/{gated}/approve", {"csrf": token, "next": f"/tasks/{gated}"})
    assert ok.status == 303 and ok.headers["location"] == f"/tasks/{gated}"
    row = tasks.approvals(None)[0]
    assert (row["status"], row["decided_by"]) == ("approved", "dashboard (127.0.0.1)") and row["decided_at"]
    assert tasks.get(gated).status.value == "queued"  # the daemon continues it, as after `approve`
    assert [(a["agent_name"], a["activity"], a["details"].get("by")) for a in memory.activities(gated)][-1] == \
        ("human", "approval_approved", "dashboard (127.0.0.1)")
    again = client.post(f"/approvals/{gated}/reject", {"csrf": token})
    assert again.status == 409 and tasks.approval_status(gated, "deploy") == "approved"
    timeline = client.get(f"/tasks/{gated}").body
    assert "deploy approved" in timeline and "dashboard (127.0.0.1)" in timeline


def test_loopback_dashboard_refuses_foreign_host_names(dash_settings, serve):
    client = serve(dash_settings())
    assert client.get("/", headers={"Host": "attacker.example:8080"}).status == 403
    assert client.post("/approvals/x/approve", {"csrf": "x"}, headers={"Host": "attacker.example"}).status == 403
    assert client.get("/", headers={"Host": "localhost:9999"}).status == 200  # any local tunnel port


def test_task_list_is_paged_filtered_and_on_indexes(dash_settings, serve):
    settings = dash_settings()
    db = Database(settings.memory.database_path)
    with db.transaction() as conn:
        conn.executemany(
            "INSERT INTO tasks (id, type, title, status, assigned_agent, created_at, updated_at) "
            "VALUES (?, 'code', ?, ?, ?, ?, ?)",
            [(f"t{i:05d}", f"task number {i}", "completed" if i % 3 else "failed", "qa" if i % 2 else "developer",
              f"2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}.000+00:00",
              f"2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}.000+00:00") for i in range(1200)])
    client = serve(settings)
    first = client.get("/tasks").body
    assert "page 1 of 24 · 1200 tasks" in first and "t01199" in first and "t01149" not in first
    second = client.get("/tasks?page=2").body
    assert "t01149" in second and "t01199" not in second
    failed = client.get("/tasks?status=failed&agent=developer").body
    assert "200 tasks" in failed and 'class="st failed"' in failed and 'class="st completed"' not in failed
    found = client.get("/tasks?q=number+1000").body
    assert "t01000" in found and "1 tasks" in found
    # Every list query the page runs uses an index, never a full scan of the table.
    from ai_agents.dashboard.queries import LIST_COLUMNS, TaskFilter

    for flt in (TaskFilter(), TaskFilter(status="failed"), TaskFilter(agent="qa"), TaskFilter(type="code")):
        where, params = flt.where()
        plan = " ".join(r["detail"] for r in db.query(
            f"EXPLAIN QUERY PLAN SELECT {LIST_COLUMNS} FROM tasks {where} ORDER BY created_at DESC LIMIT 50",
            tuple(params)))
        assert "USING INDEX" in plan and "TEMP B-TREE" not in plan, (flt, plan)


def test_cli_dashboard_refuses_a_remote_listen_without_token(write_config):
    from tests.daemon import cli

    config = write_config(None)
    r = cli(config, "dashboard", "--listen", "0.0.0.0:0", timeout=30)
    assert r.returncode == 2 and "not loopback, without dashboard.token" in r.stderr
