"""The merge queue, asked to rebuild a branch that no longer exists, fails the task with a clear reason
(and leaves main and the queue's worktree alone)."""

from __future__ import annotations

import pytest

from ai_agents.errors import TaskFailedError
from tests.merge_queue_remote.nodes import queue


def test_rework_of_a_missing_branch_is_a_clear_task_failure(fake_llm, build):
    app = build(fake_llm, start=False)
    task = app.tasks.create("code", "Rework a branch that was deleted")
    main = app.workspace.git.rev("main")
    with pytest.raises(TaskFailedError, match="branch agents/gone is gone; nothing to rebuild"):
        queue(app).rework(task, "agents/gone")
    assert app.workspace.git.rev("main") == main
