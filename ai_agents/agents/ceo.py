"""CEO: generates work from the strategy when idle, decides after the team's verdicts, handles escalations."""

from __future__ import annotations

import json
from typing import Any

from ai_agents.agents.base import BaseAgent, task_brief
from ai_agents.agents.models import CEODecision, EscalationDecision, ProposedTask, TaskPlan, Verdict
from ai_agents.domain import DecisionRecord, Role, Task, normalize_text
from ai_agents.memory.tasks import fingerprint

EMPTY_GENERATION = "generated 0 task(s)"


class CEOAgent(BaseAgent):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(Role.CEO, *args, **kwargs)

    def generate_tasks(self, *, existing_fingerprints: set[str], existing_descriptions: set[str],
                       workspace_summary: str, limit: int,
                       task: Task | None = None) -> tuple[list[ProposedTask], list[dict[str, str]], bool]:
        """New tasks from mission, strategy, goals, history and the workspace.

        Returns (accepted, skipped, goals_met): never a task whose normalised title or
        description matches one that is queued, running, waiting or done; at most ``limit``.
        """
        if limit <= 0:
            return [], [], False
        history = self.context.history()
        # An empty generation is not news: the prompt must not grow with every idle cycle.
        decided = [d for d in history["decided"] if not d.startswith(f"task_generation: {EMPTY_GENERATION}")]
        prompt = (
            f"Company: {json.dumps(self.context.global_context(), ensure_ascii=False)}\n"
            f"Done recently: {json.dumps(history['done'][-15:], ensure_ascii=False)}\n"
            f"Failed or escalated: {json.dumps(history['failed'][-10:], ensure_ascii=False)}\n"
            f"Queued or running: {json.dumps(history['in_flight'][-15:], ensure_ascii=False)}\n"
            f"Recent decisions: {json.dumps(decided[-10:], ensure_ascii=False)}\n"
            f"Workspace:\n{workspace_summary[:6000]}\n\n"
            f"Propose at most {limit} new, small, concrete tasks that move the goals forward and are not"
            " already done or in flight. Types: 'code' (a Python module with tests, written test-first),"
            " 'analysis' (a document), 'decision' (a proposal for the team to vote on). Set priorities and"
            " the agents to assign (roles: ceo, cfo, developer, qa, risk, legal, security, tech_lead)."
            " If the goals are met and nothing useful is left to do, propose nothing and set goals_met."
        )
        plan = self.ask(prompt, TaskPlan, task)
        accepted: list[ProposedTask] = []
        skipped: list[dict[str, str]] = []
        seen_fp, seen_desc = set(existing_fingerprints), set(existing_descriptions)
        for proposed in plan.tasks:
            fp, desc = fingerprint(proposed.title), normalize_text(proposed.description)
            if fp in seen_fp or (desc and desc in seen_desc):
                skipped.append({"title": proposed.title, "reason": "duplicate of an existing task"})
            elif len(accepted) >= limit:
                skipped.append({"title": proposed.title, "reason": f"over the limit of {limit} per cycle"})
            else:
                accepted.append(proposed)
                seen_fp.add(fp)
                if desc:
                    seen_desc.add(desc)
        self.memory.record_decision(self.role.value, "task_generation", {
            "summary": f"generated {len(accepted)} task(s)", "reasoning": plan.reasoning,
            "created": [t.title for t in accepted], "skipped": skipped, "goals_met": plan.goals_met,
        })
        self.record("tasks_generated", None, created=len(accepted), skipped=len(skipped), goals_met=plan.goals_met)
        return accepted, skipped, plan.goals_met

    def decide(self, task: Task, verdicts: dict[str, Verdict]) -> CEODecision:
        """Weigh the V-team's verdicts (and the criteria each chose) and decide."""
        prompt = (f"Proposal (data):\n{task_brief(task)}\n\nYour team's verdicts:\n"
                  + json.dumps({role: v.model_dump() for role, v in verdicts.items()}, ensure_ascii=False, indent=1)
                  + "\n\nDecide. If approved, list the concrete tasks that carry it out (type, priority, agents).")
        decision = self.ask(prompt, CEODecision, task)
        self.memory.record_decision(self.role.value, "decision", {
            "summary": f"{'approved' if decision.approve else 'rejected'}: {task.title}",
            "approve": decision.approve, "reasoning": decision.reasoning,
            "tasks": [t.title for t in decision.tasks],
            "verdicts": {role: v.approve for role, v in verdicts.items()},
        }, task_id=task.id)
        self.record("decision_made", task, approve=decision.approve, tasks=len(decision.tasks))
        return decision

    def handle_escalation(self, task: Task) -> EscalationDecision:
        """Retry differently, split, or drop a task that failed its attempts (applied and recorded by the caller)."""
        prompt = (f"This task could not be finished (data):\n{task_brief(task)}\n"
                  f"Attempts: {task.attempts}. Last error: {(task.error or '')[:3000]}\n\n"
                  "Decide: 'retry' with a clearer or different description, 'split' into smaller subtasks,"
                  " or 'drop' it. Explain why.")
        decision = self.ask(prompt, EscalationDecision, task)
        self.record("escalation_handled", task, action=decision.action)
        return decision

    def escalation_record(self, task: Task, decision: EscalationDecision) -> DecisionRecord:
        """The decision's ``decision_history`` row: written with the change it decides, in one transaction."""
        return DecisionRecord(self.role.value, "escalation", {
            "summary": f"{decision.action}: {task.title}", "action": decision.action,
            "reasoning": decision.reasoning, "subtasks": [t.title for t in decision.subtasks],
        }, task_id=task.id)
