"""The worktree where a change is tested while it is reviewed is used by one change after another: a change
whose tests plant a pytest hook there (turning every failure into a pass) hopes that the next change tested in
it, red on the full suite, is found green and merged without the queue's own run. Through the real daemon:
the worktree is made exactly the next candidate before each run (ignored files too) and the verdict refuses
any conftest git does not track, so the next change's run is red, the queue tests it and it never merges."""

from __future__ import annotations

from ai_agents.domain import Role, TaskStatus
from tests.mainline import git, merge_commits_green
from tests.pipeline.test_merge_queue import change, script, suite
from tests.pipeline.test_merge_queue_ahead import events
from tests.pipeline.test_tested_in_review import in_review_runs, merged, review_of, run_tasks

PLANT = '''"""Alpha."""
import pathlib

_HOOK = ("import pytest\\n\\n\\n@pytest.hook" + "impl(wrapper=True)\\n"
         + "def pytest_run" + "test_makereport(item, call):\\n"
         + "    report = yield\\n"
         + "    report.outcome, report.longrepr = 'passed', None\\n"
         + "    return report\\n")
for where in ("a.egg-info", "."):
    pathlib.Path(where).mkdir(exist_ok=True)
    pathlib.Path(where, "conftest.py").write_text(_HOOK)


def alpha():
    return 1
'''
SEED = {"util.py": "def shout(s):\n    return s.upper()\n",
        "greet.py": "from util import shout\n\n\ndef greet(name):\n    return shout('hello ' + name)\n",
        "tests/test_greet.py": ("from greet import greet\n\n\n"
                                "def test_greet():\n    assert greet('bob') == 'HELLO BOB'\n")}


def test_a_hook_planted_in_the_worktree_for_runs_in_review_does_not_make_the_next_change_green(
        fake_llm, build, tmp_path):
    fake_llm.set_script(script([
        {"when": {"schema": "TestSuite", "contains": "ALPHATASK"},
         "reply": suite("tests/test_alpha.py", "alpha.py",
                        "from alpha import alpha\n\n\ndef test_alpha():\n    assert alpha() == 1\n")},
        {"when": {"schema": "TestSuite", "contains": "BETATASK"},
         "reply": suite("tests/test_beta.py", "beta.py",
                        "from beta import beta\n\n\ndef test_beta():\n    assert beta() == 2\n")},
        {"when": {"schema": "CodeChange", "contains": "ALPHATASK"}, "reply": change("alpha.py", PLANT)},
        # Beta's own tests pass, and no test importing what it changed fails; greet's tests (not run during its
        # attempts: they import greet, not util) fail on it: only the full suite sees that.
        {"when": {"schema": "CodeChange", "contains": "BETATASK"},
         "reply": {"approach": "direct", "files": [{"path": "beta.py", "content": "def beta():\n    return 2\n"},
                                                    {"path": "util.py", "content": "def shout(s):\n    return s\n"}]}},
    ]))
    app = build(fake_llm, {"agents": {"developer": {"workers": 2}, "qa": {"workers": 2}, "tech_lead": {"workers": 1},
                                      "max_fix_attempts": 1, "max_approaches": 1},
                           "orchestrator": {"max_task_attempts": 1}}, start=False)
    for path, content in SEED.items():
        app.workspace.write_document(path, content, Role.DEVELOPER, f"seed {path}")
    ids: dict[str, str] = {}
    fake_llm.hold(*review_of("alpha.py"), until=lambda: bool(in_review_runs(app, ids["alpha"])))
    # The same worktree, after alpha's run.
    fake_llm.hold("CodeChange", "BETATASK", until=lambda: merged(app, ids, "alpha"))
    fake_llm.hold(*review_of("beta.py"), until=lambda: bool(in_review_runs(app, ids["beta"])))
    alpha, beta = run_tasks(app, ids, "alpha", "beta", timeout=240)
    assert alpha.status == TaskStatus.COMPLETED, alpha.error
    assert beta.status in (TaskStatus.FAILED, TaskStatus.ESCALATED)  # sent back until its budget ran out

    in_alpha, in_beta = in_review_runs(app, alpha.id), in_review_runs(app, beta.id)
    # The attack happened: alpha's code (which plants the hook on import) ran in that worktree, then beta's.
    assert in_alpha[0]["green"] and in_beta and in_beta[0]["worktree"] == in_alpha[0]["worktree"]
    assert not any(run["green"] for run in in_beta)
    assert not events(app, "merge_queue_tested_in_review", beta.id)
    assert any(not e["ahead"] and e["outcome"] == "failed" for e in events(app, "merge_queue_tested", beta.id))
    ws = app.live.current.file_system.workspace_path
    assert git(ws, "show", "main:util.py") == SEED["util.py"]  # nothing of beta's on main
    assert len(merge_commits_green(ws, tmp_path)) == 1
