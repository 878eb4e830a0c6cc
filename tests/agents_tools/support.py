"""Helpers for the tool-loop tests: a seeded repository, scripted tool calls, what the model was sent."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ai_agents.domain import Role, TaskStatus
from ai_agents.llm.script import Script
from tests.conftest import wait_for
from tests.fakes.llm_server import FakeLLMServer
from tests.pipeline.conftest import ROLE_PROMPTS, story_rules

SHOP = {
    "shop/__init__.py": "",
    "shop/prices.py": '"""Prices."""\n\n\ndef net(amount):\n    return amount\n\n\n'
                      'def gross(amount):\n    return amount * 1.2\n',
    "shop/cart.py": '"""The cart."""\n\nfrom shop.prices import gross\n\n\n'
                    'def total(items):\n    return sum(gross(i) for i in items)\n',
    "tests/__init__.py": "",
    "tests/test_cart.py": "def test_total():\n    from shop.cart import total\n\n    assert total([10]) == 12\n",
}
TOOLS_ON = {"agents": {"tools": {"enabled": True}}}


def call(name: str, **arguments: Any) -> dict[str, Any]:
    """One scripted reply: the model calls tool ``name``."""
    return {"tool_calls": [{"name": name, "arguments": arguments}]}


def tool_rules(qa: list[Any], developer: list[Any], **replace: Any) -> list[dict[str, Any]]:
    """The demo story's rules plus QA's and the Developer's tool-call sequences (told apart by prompt)."""
    return [{"when": {"schema": "tools", "contains": ROLE_PROMPTS["qa"]}, "replies": qa},
            {"when": {"schema": "tools", "contains": ROLE_PROMPTS["developer"]}, "replies": developer},
            *story_rules(**replace)]


def seed(app: Any, files: dict[str, str]) -> None:
    """Commit ``files`` on main of the daemon's workspace (before it starts)."""
    root = app.live.current.file_system.workspace_path
    for path, content in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(content)
    app.workspace.git.add(list(files))
    app.workspace.git.commit("chore: seed the shop\n", agent=Role.DEVELOPER, files=list(files))


def run_tool_task(fake: FakeLLMServer, build: Callable[..., Any], qa: list[Any], developer: list[Any], *,
                  title: str, description: str, repo: dict[str, str] | None = None,
                  extra: dict[str, Any] | None = None, prepare: Callable[[Any], None] | None = None,
                  **replace: Any) -> tuple[Any, Any]:
    """One code task through tool mode: the scripted tool calls, ``repo`` (default SHOP) committed on main,
    ``prepare(app)`` called, the daemon started (``replace`` as in story_rules); (the app, the task once
    settled)."""
    fake.set_script(Script.from_data({"rules": tool_rules(qa, developer, **replace)}))
    app = build(fake, {**TOOLS_ON, **(extra or {})}, start=False)
    seed(app, SHOP if repo is None else repo)
    if prepare is not None:
        prepare(app)
    app.start()
    task = app.orchestrator.submit_task("code", title=title, description=description)
    return app, settled(app, task.id)


def settled(app: Any, task_id: str) -> Any:
    return wait_for(lambda: (t := app.tasks.get(task_id)) and t.status in
                    (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.ESCALATED, TaskStatus.CANCELLED) and t,
                    timeout=90, message=f"task {task_id} settled")


def tool_results(fake: FakeLLMServer, role: str) -> list[str]:
    """Every tool result sent back to the model of ``role`` (OpenAI wire), in order, without repeats."""
    seen: list[str] = []
    for r in fake.requests:
        messages = r.json.get("messages") or []
        if not r.json.get("tools") or not messages or ROLE_PROMPTS[role] not in str(messages[0].get("content")):
            continue
        for m in messages:
            if m.get("role") == "tool" and m["content"] not in seen:
                seen.append(m["content"])
    return seen


def requests_of(fake: FakeLLMServer, role: str, where: Callable[[dict[str, Any]], bool] = lambda b: True) -> list[
        dict[str, Any]]:
    return [r.json for r in fake.requests if ROLE_PROMPTS[role] in json.dumps(r.json.get("messages", [])[:1])
            and where(r.json)]
