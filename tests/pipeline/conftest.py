"""The demo's story, served over HTTP by the fake LLM server (roles told apart by their system prompts)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from ai_agents.llm.script import Script

DEMO_SCRIPT = Path(__file__).resolve().parents[2] / "ai_agents" / "demo" / "script.yaml"
ROLE_PROMPTS = {"ceo": "You are the CEO", "qa": "You are a QA engineer", "developer": "You are a senior Python",
                "tech_lead": "You are the tech lead", "cfo": "You are the CFO"}


def story_rules(**replace: Any) -> list[dict[str, Any]]:
    """The demo script's rules with `agent:` turned into a system-prompt match.

    ``replace`` swaps the reply of the rule for one schema (e.g. CodeChange=[...] for `replies`).
    """
    rules = copy.deepcopy(yaml.safe_load(DEMO_SCRIPT.read_text())["rules"])
    for rule in rules:
        agent = rule["when"].pop("agent", None)
        if agent:
            rule["when"]["contains"] = ROLE_PROMPTS[agent]
        schema = rule["when"].get("schema")
        if schema in replace:
            rule.pop("reply", None)
            rule.pop("replies", None)
            value = replace[schema]
            rule["replies" if isinstance(value, list) else "reply"] = value
    return rules


def story_script(**replace: Any) -> Script:
    return Script.from_data({"rules": story_rules(**replace)})


def code_task_payload() -> dict[str, str]:
    plan = yaml.safe_load(DEMO_SCRIPT.read_text())["rules"][0]["reply"]["tasks"][0]
    return {"title": plan["title"], "description": plan["description"]}
