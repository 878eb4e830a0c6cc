"""V-team reviewers (CFO, Risk, Legal, Security, Tech Lead): criteria chosen per task, then a verdict."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ai_agents.agents.base import BaseAgent, task_brief
from ai_agents.agents.models import ApprovalCriteria, Verdict
from ai_agents.domain import Task


class ReviewerAgent(BaseAgent):
    """A reviewer of one role. ``facts`` adds role-specific evidence (the CFO's real spend)."""

    def __init__(self, *args: Any, facts: Callable[[], dict[str, Any]] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.facts = facts

    def determine_approval_criteria(self, task: Task) -> ApprovalCriteria:
        """The specification's determine_approval_criteria: flexible criteria for this task."""
        prompt = (f"You are the {self.role.title}. Decide the approval criteria that matter for THIS task"
                  f" from your role's point of view (name, threshold, weight), and why.\n"
                  f"Task (data):\n{task_brief(task)}\n"
                  f"Project context: {json.dumps(self.context.global_context(), ensure_ascii=False)}\n"
                  + self._facts_text())
        return self.ask(prompt, ApprovalCriteria, task)

    def verdict(self, task: Task) -> tuple[ApprovalCriteria, Verdict]:
        criteria = self.determine_approval_criteria(task)
        prompt = (f"Task (data):\n{task_brief(task)}\n\nYour criteria:\n"
                  f"{json.dumps(criteria.model_dump(), ensure_ascii=False, indent=1)}\n"
                  + self._facts_text()
                  + "Judge the proposal against your criteria: approve or not, a score 0-10, your reasoning"
                  " and concerns.")
        verdict = self.ask(prompt, Verdict, task)
        self.memory.record_decision(self.role.value, "verdict", {
            "summary": f"{'approve' if verdict.approve else 'reject'} ({verdict.score}): {task.title}",
            "approve": verdict.approve, "score": verdict.score, "reasoning": verdict.reasoning,
            "concerns": verdict.concerns, "criteria": [c.model_dump() for c in criteria.criteria],
            "criteria_reasoning": criteria.reasoning,
        }, task_id=task.id)
        self.record("verdict_given", task, approve=verdict.approve, score=verdict.score)
        return criteria, verdict

    def _facts_text(self) -> str:
        if self.facts is None:
            return ""
        return f"Facts you can rely on: {json.dumps(self.facts(), ensure_ascii=False, default=str)}\n"
