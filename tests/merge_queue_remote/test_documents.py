"""Analysis documents reach main through the merge queue, never by a commit straight onto main:
committed on top of the current main, tested unless plain text, main moved by the queue's
compare-and-swap (with a shared remote: the leased push, so two nodes' documents both land).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from ai_agents.domain import Role, TaskStatus
from ai_agents.errors import TaskFailedError
from ai_agents.llm.script import Script
from tests.conftest import wait_for
from tests.mainline import git
from tests.merge_queue_remote.nodes import bare_remote, build_node, events, queue, remote_main

PRODUCT = {"summary": "costed", "document": "## Costs\n\nSmall.", "follow_up_tasks": []}
GOOD = {"valid": True, "score": 9, "issues": []}


def test_an_analysis_document_is_committed_through_the_queue_and_a_red_one_is_refused(fake_llm, build, tmp_path):
    fake_llm.set_script(Script.from_data({"rules": [{"when": {"schema": "WorkProduct"}, "reply": PRODUCT},
                                                    {"when": {"schema": "Validation"}, "reply": GOOD}]}))
    app = build(fake_llm)
    ws = app.live.current.file_system.workspace_path
    before = git(ws, "rev-parse", "main").strip()
    task = app.orchestrator.submit_task("analysis", "Cost study", assigned_agent="cfo")
    wait_for(lambda: app.tasks.get(task.id).status == TaskStatus.COMPLETED, message="analysis completed")
    done = app.tasks.get(task.id).result
    assert done is not None and done["commit"] == git(ws, "rev-parse", "main").strip()
    assert git(ws, "rev-parse", f"{done['commit']}^").strip() == before  # one commit on top of main
    assert git(ws, "log", "-1", "--format=%ae", "main").strip() == "cfo@ai-agents.local"
    assert (ws / done["document"]).read_text().endswith("## Costs\n\nSmall.\n")  # the main tree followed
    logged = [e for e in events_of(app) if e["event"] == "merge_queue_document"]
    assert [e["commit"] for e in logged] == [done["commit"]]
    # A document that is code is tested first: a red suite keeps it off main.
    red = "def test_fails():\n    assert False\n"
    with pytest.raises(TaskFailedError, match="full suite fails"):
        queue(app).write_document("tests/test_doc.py", red, Role.CFO, "docs: red")
    assert git(ws, "rev-parse", "main").strip() == done["commit"]
    assert not (ws / "tests" / "test_doc.py").exists()


def events_of(app: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in app.live.current.logging.file.read_text().splitlines()]


def test_documents_of_two_nodes_both_land_on_the_shared_remote(fake_llm, write_config, tmp_path):
    remote = bare_remote(tmp_path)
    a = build_node(write_config, fake_llm, tmp_path, "a", remote)
    b = build_node(write_config, fake_llm, tmp_path, "b", remote)
    try:
        first = queue(a).write_document("docs/a.md", "# A\n", Role.CEO, "docs: a", {"Task-Id": "aaaaaaaaaaaa"})
        # b has not fetched since it was built: its main is stale, and the queue builds on the remote's.
        second = queue(b).write_document("docs/b.md", "# B\n", Role.CFO, "docs: b", {"Task-Id": "bbbbbbbbbbbb"})
        again = queue(a).write_document("docs/a.md", "# A\n", Role.CEO, "docs: a", {"Task-Id": "aaaaaaaaaaaa"})
    finally:
        a.stop()
        b.stop()
    assert remote_main(remote) == second and again == second  # the same document again: nothing new
    assert git(remote, "rev-parse", f"{second}^").strip() == first
    assert git(remote, "show", "main:docs/a.md") == "# A\n" and git(remote, "show", "main:docs/b.md") == "# B\n"
    assert git(tmp_path / "b" / "workspace", "rev-parse", "main").strip() == second  # b's main followed
    assert len([e for e in events(tmp_path) if e["event"] == "merge_queue_document"]) == 2
