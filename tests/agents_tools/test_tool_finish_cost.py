"""Tool mode's ``finish`` runs QA's tests and the tests importing a changed module, not the whole suite;
the full suite runs once, in the merge queue. Both timings are in the task's result and the logs."""

from __future__ import annotations

import json

from ai_agents.domain import TaskStatus
from tests.agents_tools.support import SHOP, call, run_tool_task, tool_results

REPO = {**SHOP,
        "misc/__init__.py": "",
        "misc/util.py": "def twice(x):\n    return 2 * x\n",
        "tests/test_misc.py": ("from misc.util import twice\n\n\ndef test_twice():\n    assert twice(2) == 4\n\n\n"
                               "def test_twice_zero():\n    assert twice(0) == 0\n"),
        "tests/test_prices.py": "from shop.prices import net\n\n\ndef test_net():\n    assert net(3) == 3\n"}
QA = [call("create_file", path="tests/test_discount.py",
           content="def test_gross_with_discount():\n    from shop.prices import gross\n\n"
                   "    assert gross(10, discount=0.5) == 6\n"),
      call("finish", summary="discount test", requirements=["gross takes a discount"], modules=["shop/prices.py"])]
DEVELOPER = [
    call("edit_file", path="shop/prices.py", old_text="def gross(amount):",
         new_text="def gross(amount, discount=0.0):"),  # the discount is ignored: finish is refused
    call("finish", summary="gross takes a discount"),
    call("edit_file", path="shop/prices.py", old_text="    return amount * 1.2",
         new_text="    return amount * 1.2 * (1 - discount)"),
    call("finish", summary="gross takes a discount"),
]


def test_finish_runs_the_affected_tests_and_the_queue_the_whole_suite(fake_llm, build):
    app, done = run_tool_task(fake_llm, build, QA, DEVELOPER, repo=REPO, title="Add a discount to gross",
                              description="shop.prices.gross takes discount=0.0")
    assert done.status == TaskStatus.COMPLETED, done.error

    # The refused finish ran QA's test (failing) and tests/test_prices.py (imports shop.prices), nothing else:
    # tests/test_misc.py and tests/test_cart.py (it imports shop.cart) are left to the merge queue.
    refusal = next(r for r in tool_results(fake_llm, "developer") if r.startswith("finish refused"))
    assert "outcome failed: 1 passed, 1 failed" in refusal, refusal

    events = [json.loads(line) for line in app.live.current.logging.file.read_text().splitlines()]
    queue_runs = [e for e in events if e.get("event") == "merge_queue_tested" and e.get("task_id") == done.id]
    assert len(queue_runs) == 1 and queue_runs[0]["passed"] == 5  # the whole suite, once
    assert queue_runs[0]["agent"] == "tech_lead"  # the merge stage's: no Developer worker waits on the queue
    merged = next(e for e in events if e.get("event") == "branch_merged" and e.get("task_id") == done.id)
    assert merged["attempt_test_seconds"] > 0 and merged["queue_test_seconds"] == queue_runs[0]["seconds"]
    assert done.result["attempt_test_seconds"] == merged["attempt_test_seconds"]
    assert done.result["queue_test_seconds"] == queue_runs[0]["seconds"]

    # The Developer's tests ran once per finish: the accepted finish's run (the daemon's own, with QA's test ids
    # expected) is the attempt's verdict, and the commit's, because the tree is byte for byte the same.
    dev_runs = [e for e in events if e.get("event") == "tests_run" and e.get("task_id") == done.id
                and e.get("agent") == "developer"]
    assert len(dev_runs) == 2
    activities = [a["activity"] for a in app.memory.activities(done.id)]
    assert activities.count("attempt_tests_reused") == 1 and activities.count("commit_tests_reused") == 1
