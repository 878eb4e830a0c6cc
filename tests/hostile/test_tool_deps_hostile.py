"""A hostile Developer in tool mode against request_dependency and the daemon's manifests, through the real
daemon and pipeline: option-shaped names and versions and unknown ecosystems never reach pip or npm, the
lock files cannot be written, and the task still completes with the honest edits."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from ai_agents.domain import TaskStatus
from tests.agents_tools.support import call, run_tool_task, tool_results
from tests.agents_tools.test_tool_pipeline import DEVELOPER, QA


def ask(**arguments: Any) -> dict[str, Any]:
    return {"tool_calls": [{"name": "request_dependency", "arguments": arguments}]}


HOSTILE = [
    ask(name="--index-url=http://127.0.0.1:9/simple", version="1", ecosystem="python", why="x"),
    ask(name="evil", version="1.0 --registry http://127.0.0.1:9", ecosystem="npm", why="x"),
    ask(name="file:../../outside", version="", ecosystem="npm", why="x"),
    ask(name="evil", version="1.0", ecosystem="pip", why="x"),
    call("create_file", path="requirements.lock", content="evil==6.6.6 --hash=sha256:" + "0" * 64 + "\n"),
    call("create_file", path="sub/package-lock.json", content="{}\n"),
]


def test_hostile_dependency_requests_never_reach_an_installer(fake_llm, build):
    app, done = run_tool_task(fake_llm, build, QA, [*HOSTILE, *DEVELOPER], extra={"dependencies": {"allow": ["*"]}},
                              title="Add a discount to gross and total",
                              description="shop.prices.gross and shop.cart.total take discount=0.0")
    assert done.status == TaskStatus.COMPLETED, done.error
    told = tool_results(fake_llm, "developer")
    refused = [r for r in told if r.startswith("invalid arguments for request_dependency")]
    for field in ("name", "version", "ecosystem"):  # (the two bad names get the same answer)
        assert any(r.startswith(f"invalid arguments for request_dependency: {field}:") for r in refused), refused
    assert any("requirements.lock is written by the daemon" in r for r in told)
    assert any("sub/package-lock.json is written by the daemon" in r for r in told)
    assert not (app.live.current.memory.database_path.parent / "project-env").exists()  # pip never ran
    ws = Path(app.live.current.file_system.workspace_path)
    tracked = subprocess.run(["git", "-C", str(ws), "ls-files"], capture_output=True, text=True).stdout.split()
    assert "requirements.lock" not in tracked and "sub/package-lock.json" not in tracked
    assert not (ws / "node_modules").exists()
    assert not [a for a in app.memory.activities(done.id) if a["activity"] == "dependency_installed"]
