"""A Developer whose code imports a package this workspace never asked for gets no pass for it.

All tasks share one project virtualenv, and the tests run on the daemon's interpreter. Before, code that
imported a package another task had installed (or one of the daemon's own, such as yaml) passed its tests
and the merge queue's full suite, and merged: main then imported a package its requirements.lock lacks, and
a fresh checkout of main was broken while the daemon reported green. Now the tests import only what the
workspace's lock pins (testing/site_view.py): such code fails like it would on a fresh checkout, the
Developer is told why, and only code that needs nothing unlocked reaches main."""

from __future__ import annotations

from typing import Any

from ai_agents.deps.python_env import ENV_DIR
from ai_agents.domain import TaskStatus
from tests.agents_tools.support import call, tool_results
from tests.hostile.test_tool_hostile import GOOD_CODE, GOOD_TESTS, run
from tests.workspace.test_ws_site_view import plant

USES_OTHER_TASKS_PACKAGE = "import sneaky\n\n\ndef half(amount):\n    return sneaky.halve(amount)\n"
USES_DAEMONS_PACKAGE = "import yaml\n\n\ndef half(amount):\n    return yaml.safe_load(str(amount / 2))\n"


def installed_by_another_task(app: Any) -> None:
    plant(app.live.current.memory.database_path.parent / ENV_DIR, "sneaky", "1.0",
          "def halve(amount):\n    return amount / 2\n")


def test_code_importing_a_package_the_lock_lacks_never_passes(fake_llm, build):
    qa = [call("create_file", path="tests/test_half.py", content=GOOD_TESTS), call("finish", summary="tests")]
    developer = [
        call("edit_file", path="shop/prices.py", old_text="def net(amount):",
             new_text=USES_OTHER_TASKS_PACKAGE + "\n\ndef net(amount):"),
        call("finish", summary="half, with the package that is already there"),  # refused: not importable
        call("edit_file", path="shop/prices.py", old_text=USES_OTHER_TASKS_PACKAGE, new_text=USES_DAEMONS_PACKAGE),
        call("finish", summary="half, with yaml"),  # refused: the daemon's packages are not the project's
        call("edit_file", path="shop/prices.py", old_text=USES_DAEMONS_PACKAGE, new_text=GOOD_CODE),
        call("finish", summary="half"),
    ]
    app, done = run(fake_llm, build, qa, developer, prepare=installed_by_another_task)
    assert done.status == TaskStatus.COMPLETED, done.error

    main = app.workspace.git.file_at("main", "shop/prices.py")
    assert "import sneaky" not in main and "import yaml" not in main and GOOD_CODE in main
    assert app.workspace.git.file_at("main", "requirements.lock") is None  # nothing was asked for or locked
    results = "\n".join(tool_results(fake_llm, "developer"))
    assert "No module named 'sneaky'" in results
    assert "No module named 'yaml'" in results
    tested = [a["details"] for a in app.memory.activities(done.id) if a["activity"] == "code_tested"]
    assert tested and all(t["outcome"] == "passed" for t in tested)  # only the plain code reached an attempt
