"""The worktree caps: at ``file_system.max_worktrees`` worktrees, or ``max_worktrees_mb`` of disk used by
them, a new code task waits (CapacityWait: requeued, no attempt counted); a task that has its worktree
goes on; room made by a release is used at once. Real git worktrees of the real daemon's repository.
"""

from __future__ import annotations

import pytest

from ai_agents.config.live import live_prefix
from ai_agents.domain import TaskType
from ai_agents.errors import CapacityWait, ErrorAction, action_for
from ai_agents.orchestrator import worktrees as worktrees_module
from ai_agents.orchestrator.pipeline import CodeFlow


@pytest.mark.parametrize("cap", ["max_worktrees", "max_worktrees_mb"])
def test_at_a_cap_a_new_task_waits_an_owned_worktree_goes_on_and_a_release_makes_room(
        fake_llm, build, monkeypatch, cap):
    monkeypatch.setattr(worktrees_module, "WAIT_FOR_SLOT_SECONDS", 0.2)
    limits = {"max_worktrees": 1} if cap == "max_worktrees" else {"max_worktrees_mb": 1}
    app = build(fake_llm, {"file_system": limits}, start=False)
    flow = app.orchestrator.flows[TaskType.CODE]
    assert isinstance(flow, CodeFlow) and flow.worktrees is not None
    trees = flow.worktrees
    first = trees.acquire("aaaaaaaaaaaa", "agents/aaaaaaaaaaaa-first")
    (first.path / "build-output.bin").write_bytes(b"\0" * (2 * 1024 * 1024))  # 2 MB on disk in its worktree
    with pytest.raises(CapacityWait) as waited:
        trees.acquire("bbbbbbbbbbbb", "agents/bbbbbbbbbbbb-second")
    assert cap in str(waited.value)
    assert action_for(waited.value) == ErrorAction.WAIT_FOR_CAPACITY
    assert not (trees.root / "bbbbbbbbbbbb").exists()
    assert trees.acquire("aaaaaaaaaaaa", "agents/aaaaaaaaaaaa-first") is first  # its own worktree: no wait
    trees.release("aaaaaaaaaaaa")
    second = trees.acquire("bbbbbbbbbbbb", "agents/bbbbbbbbbbbb-second")
    assert (second.path / ".git").is_file() and second.git.current_branch() == "agents/bbbbbbbbbbbb-second"


def test_the_caps_and_the_integration_mode_are_live_keys():
    for key in ("file_system.max_worktrees", "file_system.max_worktrees_mb", "git.integration"):
        assert live_prefix(key) == tuple(key.split(".")), key
    assert live_prefix("git.shared_remote") is None and live_prefix("git.catch_up") is None  # restart
