"""A kill between QA's commit and the hand-off to the Developer (the window the kill -9 run's
``after_commit`` shot hits): the restarted task must resume from that commit, not ask QA again.

A real model answers differently the second time, so asking again would put a second QA
commit for the same task on main. The scripted QA here does exactly that (two versions).
"""

from __future__ import annotations

import copy
import subprocess

from ai_agents.domain import TaskType
from ai_agents.llm.script import Script
from tests.chaos.scenario import helper_names, helper_rules, task_title
from tests.pipeline.conftest import story_rules


def test_resumes_from_the_qa_commit_instead_of_writing_the_tests_again(fake_llm, build):
    name = helper_names(1)[0]
    rules = helper_rules([name])
    first = rules[0]["reply"]
    second = copy.deepcopy(first)
    second["test_code"] += "\n\ndef test_a_second_opinion():\n    assert False\n"
    rules[0].pop("reply")
    rules[0]["replies"] = [first, second]
    fake_llm.set_script(Script.from_data({"rules": rules + story_rules()}))
    app = build(fake_llm, start=False)
    flow = app.orchestrator.flows[TaskType.CODE]
    task = app.tasks.create(TaskType.CODE, task_title(name), "")

    committed = flow.run(task)  # QA's tests committed on the task branch ...
    # ... and the daemon dies before the hand-off: the task is still in stage "tests".
    resumed = flow.run(app.tasks.get(task.id))

    branch = committed.result["branch"]
    qa_commits = [e for e in app.workspace.git.log(20, branch=branch)
                  if f"Task-Id: {task.id}" in e["message"] and "Agent: QA" in e["message"]]
    assert len(qa_commits) == 1, [e["message"].splitlines()[0] for e in qa_commits]
    assert resumed.next_stage == "code"
    for key in ("test_path", "module_path", "tests_commit"):
        assert resumed.result[key] == committed.result[key], key
    committed_tests = subprocess.run(["git", "-C", str(app.workspace.fs.workspace_path), "show",
                                      f"{branch}:{first['test_path']}"], capture_output=True, text=True,
                                     check=True).stdout
    assert committed_tests == first["test_code"]  # QA's first version, not a second opinion
