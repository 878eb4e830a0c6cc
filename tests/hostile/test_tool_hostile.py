"""Hostile tool calls through the real daemon and pipeline (openai SDK, fake server): every refused
call is answered with its reason, nothing lands where it must not, and the task still completes."""

from __future__ import annotations

from ai_agents.domain import TaskStatus
from tests.agents_tools.support import SHOP, call, run_tool_task, tool_results

GOOD_TESTS = ("def test_half():\n    from shop.prices import half\n\n    assert half(10) == 5\n")
GOOD_CODE = "def half(amount):\n    return amount / 2\n"


def run(fake_llm, build, qa, developer, **replace):
    return run_tool_task(fake_llm, build, qa, developer, title="Add half() to shop.prices",
                         description="shop.prices.half(amount) returns amount / 2", **replace)


def test_developer_escapes_are_refused_with_reasons(fake_llm, build, tmp_path):
    qa = [call("create_file", path="tests/test_half.py", content=GOOD_TESTS), call("finish", summary="tests")]
    developer = [
        call("create_file", path="../outside.py", content="x = 1\n"),
        call("create_file", path="/tmp/abs.py", content="x = 1\n"),
        call("edit_file", path=".git/config", old_text="[core]", new_text="[core]\n\thooksPath = /tmp"),
        call("create_file", path="shop/../tests/test_evil.py", content="def test_ok():\n    assert True\n"),
        call("create_file", path="conftest.py", content="collect_ignore = ['tests']\n"),
        call("edit_file", path="tests/test_half.py", old_text="assert half(10) == 5", new_text="assert True"),
        call("delete_everything", path="."),  # no such tool
        call("edit_file", path="shop/prices.py"),  # missing arguments
        call("search", pattern="(unclosed"),  # a bad regex
        call("finish", summary="nothing done"),  # refused: no change yet
        call("create_file", path="shop/half.py", content="def broken(:\n"),  # not Python
        call("edit_file", path="shop/prices.py", old_text="def net(amount):",
             new_text=GOOD_CODE + "\n\ndef net(amount):"),
        call("edit_file", path="shop/prices.py", old_text="    return amount / 2", new_text="    return amount * 2"),
        call("finish", summary="half"),  # refused: the suite fails (half doubles)
        call("edit_file", path="shop/prices.py", old_text="    return amount * 2\n",
             new_text="    return amount / 2\n"),
        call("finish", summary="half"),
    ]
    app, done = run(fake_llm, build, qa, developer)
    assert done.status == TaskStatus.COMPLETED, done.error
    results = "\n".join(tool_results(fake_llm, "developer"))
    for reason in ("uses '..' to leave the workspace", "is absolute", "inside .git/",
                   "tests/test_evil.py belongs to QA's tests", "conftest.py belongs to QA's tests",
                   "tests/test_half.py belongs to QA's tests", "unknown tool 'delete_everything'",
                   "invalid arguments for edit_file: old_text: Field required", "invalid regular expression",
                   "finish refused: you have changed no file yet", "would not be valid Python",
                   "finish refused: the tests do not pass yet"):
        assert reason in results, reason
    ws = app.live.current.file_system.workspace_path
    assert not (ws.parent / "outside.py").exists() and not (ws / "conftest.py").exists()
    assert not (ws / "tests/test_evil.py").exists() and not (ws / "shop/half.py").exists()
    assert (ws / "tests/test_half.py").read_text() == GOOD_TESTS
    assert "hooksPath" not in (ws / ".git/config").read_text()
    assert "def half(amount):\n    return amount / 2" in (ws / "shop/prices.py").read_text()


def test_qa_may_not_remove_earlier_tests_or_prove_nothing(fake_llm, build):
    qa = [
        call("create_file", path="tests/test_cart.py", content=GOOD_TESTS),  # overwrite whole: refused
        call("edit_file", path="tests/test_cart.py",  # delete the earlier test: refused
             old_text="def test_total():\n    from shop.cart import total\n\n    assert total([10]) == 12\n",
             new_text=GOOD_TESTS),
        call("create_file", path="shop/prices_test_helper.py", content="x = 1\n"),  # outside tests/: refused
        call("create_file", path="tests/conftest.py", content="collect_ignore = ['test_cart.py']\n"),  # refused
        call("create_file", path="tests/test_half.py",  # fails only at collection: refused at finish
             content="from shop.prices import half\n\n\ndef test_half():\n    assert half(10) == 5\n"),
        call("finish", summary="tests"),
        call("edit_file", path="tests/test_half.py", old_text="from shop.prices import half\n\n\n", new_text=""),
        call("edit_file", path="tests/test_half.py", old_text="def test_half():\n",
             new_text="def test_half():\n    from shop.prices import half\n\n"),
        call("edit_file", path="tests/test_cart.py", old_text="    assert total([10]) == 12\n",  # add beside: fine
             new_text="    assert total([10]) == 12\n\n\ndef test_empty_cart():\n    from shop.cart import total\n\n"
                      "    assert total([]) == 0\n"),
        call("finish", summary="tests for half", modules=["shop/prices.py"]),
    ]
    developer = [call("edit_file", path="shop/prices.py", old_text="def net(amount):",
                      new_text=GOOD_CODE + "\n\ndef net(amount):"), call("finish", summary="half")]
    app, done = run(fake_llm, build, qa, developer)
    assert done.status == TaskStatus.COMPLETED, done.error
    results = "\n".join(tool_results(fake_llm, "qa"))
    assert "tests/test_cart.py already exists" in results
    assert "write refused: the edit removes test_total in tests/test_cart.py" in results
    assert "shop/prices_test_helper.py is outside tests/" in results
    assert "tests/conftest.py is test configuration" in results
    assert "finish refused: the tests only fail to be collected" in results
    ws = app.live.current.file_system.workspace_path
    cart_tests = (ws / "tests/test_cart.py").read_text()
    assert cart_tests.startswith(SHOP["tests/test_cart.py"]) and "def test_empty_cart" in cart_tests
    assert not (ws / "shop/prices_test_helper.py").exists() and not (ws / "tests/conftest.py").exists()
    assert done.result["tests_passed"] == 3


RETIRE_QA = [
    call("retire_test", path="tests/test_cart.py", test_name="test_total", reason="short"),  # reason too short
    call("retire_test", path="tests/test_cart.py", test_name="test_nope",
         reason="this test does not exist on the main branch"),
    call("retire_test", path="tests/test_cart.py", test_name="test_total",
         reason="total() now rounds to cents, so the exact 12 is obsolete"),
    call("create_file", path="tests/test_half.py", content=GOOD_TESTS),
    call("finish", summary="tests for half", modules=["shop/prices.py"]),
]
HALF_DEV = [call("edit_file", path="shop/prices.py", old_text="def net(amount):",
                 new_text=GOOD_CODE + "\n\ndef net(amount):"), call("finish", summary="half")]


def test_qa_retires_a_test_only_with_a_reason_the_tech_lead_approves(fake_llm, build):
    app, done = run(fake_llm, build, RETIRE_QA, HALF_DEV)
    assert done.status == TaskStatus.COMPLETED, done.error
    results = "\n".join(tool_results(fake_llm, "qa"))
    assert "invalid arguments for retire_test: reason: String should have at least 15 characters" in results
    assert "test_nope is not an earlier test of tests/test_cart.py (its tests on the main branch: test_total)" \
        in results
    ws = app.live.current.file_system.workspace_path
    assert "test_total" not in (ws / "tests/test_cart.py").read_text()
    [asked] = [r for r in fake_llm.requests if "QA wants to remove earlier tests" in str(r.json["messages"])]
    assert "tests/test_cart.py::test_total: total() now rounds to cents" in str(asked.json["messages"])
    reviewed = [a for a in app.memory.activities(done.id) if a["activity"] == "tests_retirement_reviewed"]
    assert reviewed and reviewed[0]["details"]["approve"] is True
    assert "Retired-Tests: tests/test_cart.py::test_total" in app.workspace.git.log(10)[2]["message"]


def test_tech_lead_refuses_a_retirement_and_nothing_is_committed(fake_llm, build):
    refuse = {"approve": False, "score": 2, "reasons": ["the test still holds"], "issues": ["keep test_total"]}
    app, done = run(fake_llm, build, RETIRE_QA, HALF_DEV, Review=[refuse])
    assert done.status != TaskStatus.COMPLETED
    assert "the Tech Lead refused to let QA remove earlier tests (keep test_total)" in (done.error or "")
    ws = app.live.current.file_system.workspace_path
    assert (ws / "tests/test_cart.py").read_text() == SHOP["tests/test_cart.py"]
    assert not (ws / "tests/test_half.py").exists()
