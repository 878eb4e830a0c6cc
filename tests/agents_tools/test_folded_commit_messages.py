"""A commit message given with the answer it describes saves a model call per commit.

Tool mode: QA's and the Developer's ``finish`` may carry ``commit_subject``/``commit_body``; JSON mode: QA's
TestSuite and the Developer's CodeChange may carry ``commit_message``. Given, no CommitMessage call is made
and git holds the given message; missing or invalid, the daemon asks for one as before."""

from __future__ import annotations

from ai_agents.domain import TaskStatus
from tests.agents_tools.support import call
from tests.chaos.scenario import chaos_script, helper_names, module_name, task_title
from tests.conftest import wait_for
from tests.fakes.llm_wire import parse_openai
from tests.hostile.test_tool_hostile import GOOD_CODE, GOOD_TESTS, run
from tests.mainline import git


def commit_message_calls(fake) -> int:
    """Requests that asked the model for a CommitMessage answer (not ones whose schema merely holds one)."""
    return sum(1 for r in fake.requests if parse_openai(r.json).schema_name == "CommitMessage")


def subjects(app) -> list[str]:
    ws = app.live.current.file_system.workspace_path
    return git(ws, "log", "--format=%s", "main").splitlines()


def test_tool_mode_messages_given_with_finish_are_committed_without_asking(fake_llm, build):
    qa = [call("create_file", path="tests/test_half.py", content=GOOD_TESTS),
          call("finish", summary="tests", commit_subject="add tests for half()", commit_body="Pin it down.")]
    developer = [call("edit_file", path="shop/prices.py", old_text="def net(amount):",
                      new_text=GOOD_CODE + "\n\ndef net(amount):"),
                 call("finish", summary="half", commit_subject="add half() to prices")]
    app, done = run(fake_llm, build, qa, developer)
    assert done.status == TaskStatus.COMPLETED, done.error
    assert commit_message_calls(fake_llm) == 0
    assert "test: add tests for half()" in subjects(app) and "feat: add half() to prices" in subjects(app)


def test_tool_mode_without_a_valid_message_the_daemon_asks(fake_llm, build):
    qa = [call("create_file", path="tests/test_half.py", content=GOOD_TESTS),
          call("finish", summary="tests", commit_subject="x")]  # too short to be a subject: asked instead
    developer = [call("edit_file", path="shop/prices.py", old_text="def net(amount):",
                      new_text=GOOD_CODE + "\n\ndef net(amount):"), call("finish", summary="half")]
    _app, done = run(fake_llm, build, qa, developer)
    assert done.status == TaskStatus.COMPLETED, done.error
    assert commit_message_calls(fake_llm) == 2


def test_json_mode_messages_given_with_the_answers_are_committed_without_asking(fake_llm, build):
    names = helper_names(1)
    fake_llm.set_script(chaos_script(names))  # its TestSuite and CodeChange carry commit_message
    app = build(fake_llm)
    task = app.orchestrator.submit_task("code", task_title(names[0]), f"{names[0]} brief")
    done = wait_for(lambda: (t := app.tasks.get(task.id)) and t.status in (TaskStatus.COMPLETED, TaskStatus.FAILED)
                    and t, timeout=90, message="the task settled")
    assert done.status == TaskStatus.COMPLETED, done.error
    assert commit_message_calls(fake_llm) == 0
    module = module_name(names[0])
    assert f"test: add tests for {module}" in subjects(app) and f"feat: add {module}" in subjects(app)
