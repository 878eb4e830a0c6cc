"""A verdict is reused only for byte for byte the tree it was given on (Workspace.fingerprint).

The Developer's ``finish`` gate runs the tests itself; the pipeline's attempt and the commit take that
verdict instead of running the tests again only when the tree is the same. Code that rewrites itself
while the tests run gets a passing run on bytes that are no longer there: that run is never reused,
and the rewritten code never reaches main."""

from __future__ import annotations

import json

from ai_agents.domain import TaskStatus
from tests.agents_tools.support import call
from tests.hostile.test_tool_hostile import GOOD_TESTS, run

REWRITE = (
    "import pathlib as _pathlib\n\n"
    "_me = _pathlib.Path(__file__)\n"
    "_mark = '#' + ' seen'\n"
    "if _mark not in _me.read_text():\n"
    "    _me.write_text(_me.read_text() + _mark + '\\n')\n\n\n"
)
CLEAN = "def half(amount):\n    return amount / 2\n"
SELF_REWRITING = REWRITE + CLEAN


def test_a_pass_on_code_that_rewrote_itself_is_not_reused(fake_llm, build):
    qa = [call("create_file", path="tests/test_half.py", content=GOOD_TESTS), call("finish", summary="tests")]
    developer = [
        call("create_file", path="shop/half.py", content=SELF_REWRITING),
        call("edit_file", path="tests/test_half.py", old_text="x", new_text="y"),  # refused: QA's file
        call("finish", summary="half"),  # the run passes, but shop/half.py changed under it
        # Sent back ("changed while the tests ran"): the next loop starts from the previous change.
        call("edit_file", path="shop/half.py", old_text=REWRITE, new_text=""),
        call("finish", summary="half, plainly"),
    ]
    qa_tests = GOOD_TESTS.replace("from shop.prices import half", "from shop.half import half")
    qa[0] = call("create_file", path="tests/test_half.py", content=qa_tests)
    app, done = run(fake_llm, build, qa, developer)
    assert done.status == TaskStatus.COMPLETED, done.error

    main = app.workspace.git.file_at("main", "shop/half.py")
    assert main == CLEAN  # neither the self-rewriting code nor what it wrote
    activities = app.memory.activities(done.id)
    names = [a["activity"] for a in activities]
    # The tainted pass was not taken as the attempt's verdict: the attempt ran the tests and saw the rewrite.
    assert names.count("attempt_tests_reused") == 1  # the clean attempt only
    tested = [a for a in activities if a["activity"] == "code_tested"]
    assert len(tested) == 2 and tested[0]["details"]["outcome"] == "passed"
    events = [json.loads(line) for line in app.live.current.logging.file.read_text().splitlines()]
    assert any(e.get("event") == "files_changed_by_tests" for e in events)
