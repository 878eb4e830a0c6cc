"""QA and Developer: the two halves of test-first code writing."""

from __future__ import annotations

import json
from typing import Any

from ai_agents.agents.base import BaseAgent, task_brief
from ai_agents.agents.models import CodeChange, CommitMessage, TestSuite
from ai_agents.domain import AttemptFailure, Role, Task

MAX_DIFF_CHARS = 12_000


def _failures_text(failures: list[AttemptFailure], limit: int = 8) -> str:
    lines = []
    for f in failures[:limit]:
        lines.append(f"- {f.what}: {f.message[:max(500, f.brief)]}\n  {f.traceback[-1500:]}")
    return "\n".join(lines) or "(no failure details)"


class QAAgent(BaseAgent):
    """States constraints and requirements, then writes the tests first."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(Role.QA, *args, **kwargs)

    def write_tests(self, task: Task, workspace: str, feedback: list[str], framework: str = "pytest") -> TestSuite:
        if framework == "jest":
            how = (" path the Developer must write (a new or existing .js or .ts file outside tests/) and write jest"
                   " tests FIRST in tests/<name>.test.js (or .ts): describe()/test() blocks whose names are plain"
                   " string literals (no test.each, .skip or computed names), unit tests, edge cases and input"
                   " validation. require() the module by its path relative to the test file.")
        else:
            how = (" path the Developer must write (a new or existing .py file outside tests/) and write pytest"
                   " tests FIRST in tests/test_<name>.py: unit tests, edge cases and input validation. Import the"
                   " module by its dotted path from the workspace root.")
        prompt = (f"Task (data):\n{task_brief(task)}\n\nWorkspace:\n{workspace[:6000]}\n\n"
                  "With a product view of the task, state its constraints and requirements, choose the module"
                  + how + " The tests must fail before the code exists. Give their commit message in"
                  " commit_message: " + COMMIT_STYLE)
        if feedback:
            prompt += "\nYour previous tests were sent back:\n- " + "\n- ".join(feedback[-5:])
        return self.ask(prompt, TestSuite, task)

    def commit_message(self, task: Task, diff: str) -> CommitMessage:
        return self.ask(_commit_prompt(task, diff, "the tests you wrote (type 'test')"), CommitMessage, task)


class DeveloperAgent(BaseAgent):
    """Reads the tests and the code, writes code until they pass; 3 fixes, then a different approach."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(Role.DEVELOPER, *args, **kwargs)

    def write_code(self, task: Task, suite: dict[str, Any], tests: str, context: str, *,
                   approach: int, rejected: list[str]) -> CodeChange:
        prompt = (f"Task (data):\n{task_brief(task)}\n\nRequirements: {json.dumps(suite.get('requirements', []))}\n"
                  f"Constraints: {json.dumps(suite.get('constraints', []))}\n"
                  f"Write the module {suite['module_path']} so that these tests ({suite['test_path']}) pass. "
                  "You may not change the tests. If the code needs a third-party package, list it in `dependencies`"
                  " (name, exact version, why) instead of writing requirements.txt or package.json: the daemon decides"
                  " whether it may be installed and tells you if not.\n"
                  f"--- {suite['test_path']} ---\n{tests[:30000]}\n--- end ---\n\nRelevant code:\n{context[:12000]}"
                  f"\n\nGive the commit message for your code in commit_message (type feat or fix): {COMMIT_STYLE}")
        if approach:
            prompt += ("\n\nYour earlier approach failed. Use a COMPLETELY DIFFERENT approach. It failed because:\n- "
                       + "\n- ".join(rejected[-6:]))
        return self.ask(prompt, CodeChange, task)

    def fix_code(self, task: Task, suite: dict[str, Any], tests: str, change: CodeChange, *,
                 failures: list[AttemptFailure], review: list[str]) -> CodeChange:
        code = "\n".join(f"--- {f.path} ---\n{f.content[:20000]}" for f in change.files)
        rejected = "the Tech Lead rejected the code:\n- " + "\n- ".join(review)
        problem = (f"The tests fail:\n{_failures_text(failures)}" if failures else f"The tests pass, but {rejected}")
        if failures and review:
            problem += f"\n\nAnd {rejected}"
        prompt = (f"Task (data):\n{task_brief(task)}\n\nTests ({suite['test_path']}, you may not change them):\n"
                  f"{tests[:30000]}\n\nYour code:\n{code}\n\n{problem}\n\nReturn the corrected files, and their "
                  f"commit message in commit_message (type feat or fix): {COMMIT_STYLE}")
        return self.ask(prompt, CodeChange, task)

    def commit_message(self, task: Task, diff: str) -> CommitMessage:
        return self.ask(_commit_prompt(task, diff, "the code you wrote (type feat or fix)"), CommitMessage, task)


COMMIT_STYLE = ("Conventional Commits, subject in the imperative, at most 72 characters; a short body saying why."
                " No secrets.")


def _commit_prompt(task: Task, diff: str, what: str) -> str:
    return (f"Task (data):\n{task_brief(task)}\n\nWrite a Conventional Commits message for {what}, from this"
            f" diff: {COMMIT_STYLE}\n{diff[:MAX_DIFF_CHARS]}")
