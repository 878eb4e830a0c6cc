"""Hostile model text shown on the dashboard: it goes through the real pipeline, then every page renders it inert.

The model answers with markup meant to run in a person's browser (a task title from the
submitter, the commit message, the code and its review) and a credential-shaped string.
The case runs like any corpus case (:class:`tests.hostile.harness.CaseRun`: real daemon,
real git, real tests); then the dashboard serves the resulting store and workspace, and
no page may carry the markup unescaped or the secret at all.
"""

from __future__ import annotations

import http.client
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FAKE_KEY
from tests.fakes.llm_server import FakeLLMServer
from tests.hostile.harness import _FIXED, Case, CaseRun

MARKUP = '</pre></td><script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
SECRET = "sk-" + "proj-" + "HOSTILEdashboardKEY0123456789abcdef"
FIXED_CODE = _FIXED["files"][0]["content"]

CASE = Case("dashboard_hostile_markup", {
    "about": "The model's commit message, code, review and the task title carry markup and a key for the dashboard.",
    "task": {"type": "code", "title": f"Add a slugify helper {MARKUP}", "description": f"textutils.slugify {MARKUP}"},
    "replies": {
        "CommitMessage": {"type": "feat", "subject": f"add slugify {MARKUP}"[:70], "body": f"Body {MARKUP}"},
        "CodeChange": {"approach": f"approach {MARKUP}",
                       "files": [{"path": "textutils.py", "content": FIXED_CODE + f"\n# {MARKUP}\n"}]},
        "Review": {"approve": True, "score": 9, "reasons": [f"fine {MARKUP}", f"key {SECRET}"], "issues": []},
    },
    "expect": {"status": "completed", "logged": [{"activity": "code_reviewed", "details": "<script>"}],
               "never": [SECRET]},
})


def get(port: int, path: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read().decode()
    conn.close()
    assert r.status == 200, (path, r.status)
    return body


def test_hostile_markup_from_the_model_renders_inert(tmp_path: Path, fake_llm: FakeLLMServer,
                                                     write_config: Callable[..., Path], build: Callable[..., Any],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from ai_agents.dashboard import DashboardServer

    run = CaseRun(CASE, tmp_path, fake_llm, write_config, build, monkeypatch)
    server = None
    try:
        run.run()
        task = next(t for t in run.tasks.list() if t.title.startswith("Add a slugify helper </pre>"))
        server = DashboardServer(run.app.live.current, "127.0.0.1:0")
        server.start()
        port = server.address[1]
        task_page = get(port, f"/tasks/{task.id}")
        commits = re.findall(r'href="/commit/([0-9a-f]{40})\?task=', task_page)
        assert commits, "the task page links its commits"
        pages = {path: get(port, path) for path in ("/", "/tasks", "/charts", "/approvals", f"/tasks/{task.id}",
                                                     *(f"/commit/{c}?task={task.id}" for c in commits))}
        escaped = "&lt;/pre&gt;&lt;/td&gt;&lt;script&gt;window.__pwned=1&lt;/script&gt;"
        for path, body in pages.items():
            assert "<script>window.__pwned" not in body and '<img src=x onerror="window.__pwned' not in body, path
            assert "</pre></td><script>" not in body, path
            assert SECRET not in body and FAKE_KEY not in body, path
        assert escaped in pages[f"/tasks/{task.id}"]  # title, review reasons, diff: shown, as text
        assert "# " + escaped in pages[f"/tasks/{task.id}"]  # the hostile line of code inside the diff
        assert any(escaped in body for path, body in pages.items() if path.startswith("/commit/"))
    finally:
        if server is not None:
            server.stop()
        run.stop()
