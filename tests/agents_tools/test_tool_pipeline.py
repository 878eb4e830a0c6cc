"""QA and the Developer through native tool calls, in the real daemon, via the real openai SDK
against the fake server: a multi-file change found with search and made with search/replace."""

from __future__ import annotations

import json
import subprocess

from ai_agents.domain import TaskStatus
from tests.agents_tools.support import SHOP, TOOLS_ON, call, requests_of, run_tool_task, seed, tool_results

DISCOUNT_TESTS = ("def test_total_with_discount():\n    from shop.cart import total\n\n"
                  "    assert total([10, 10], discount=0.5) == 12\n\n\n"
                  "def test_gross_with_discount():\n    from shop.prices import gross\n\n"
                  "    assert gross(10, discount=0.5) == 6\n")

QA = [
    call("repo_map", focus=["shop/cart.py"]),
    call("search", pattern=r"def (gross|total)", path_glob="shop/*.py"),
    call("read_file", path="tests/test_cart.py", start_line=40),  # past the end of the file
    call("edit_file", path="tests/test_cart.py", old_text="assert total([10]) == 12",
         new_text="assert total([10]) > 0"),  # weakening an earlier test: refused
    call("create_file", path="tests/test_discount.py", content=DISCOUNT_TESTS),
    call("finish", summary="discount tests", requirements=["gross and total take a discount"],
         modules=["shop/prices.py", "shop/cart.py"]),
]
DEVELOPER = [
    call("search", pattern="gross"),
    call("edit_file", path="shop/prices.py", old_text="    return amount",  # in net and in gross: ambiguous
         new_text="    return amount * (1 - discount)"),
    call("edit_file", path="shop/prices.py", old_text="def gross(amount):\n    return amount * 1.5",  # missing
         new_text="x"),
    call("edit_file", path="shop/prices.py", old_text="def gross(amount):\n    return amount * 1.2",
         new_text="def gross(amount, discount=0.0):\n    return amount * 1.2 * (1 - discount)"),
    call("create_file", path="tests/test_more.py", content="def test_x():\n    assert True\n"),  # refused
    call("edit_file", path="shop/cart.py",  # indented differently: the tolerant match applies it
         old_text="  def total(items):\n      return sum(gross(i) for i in items)",
         new_text="  def total(items, discount=0.0):\n      return sum(gross(i, discount) for i in items)"),
    call("run_tests"),
    call("finish", summary="gross and total take a discount"),
]


def git(ws, *args: str) -> str:
    return subprocess.run(["git", "-C", str(ws), *args], capture_output=True, text=True, check=True).stdout


def test_multi_file_change_through_tools(fake_llm, build):
    app, done = run_tool_task(fake_llm, build, QA, DEVELOPER, title="Add a discount to gross and total",
                              description="shop.prices.gross and shop.cart.total take discount=0.0")
    assert done.status == TaskStatus.COMPLETED, done.error
    ws = app.live.current.file_system.workspace_path

    # QA told why: the read past the end, the weakened earlier test.
    qa_results = tool_results(fake_llm, "qa")
    assert any("tests/test_cart.py has 4 lines; start_line 40 is past the end of the file" in r for r in qa_results)
    assert any("write refused" in r and "changes test_total" in r for r in qa_results)
    assert any("shop/prices.py:" in r and "def gross(amount):" in r for r in qa_results)  # search: file:line
    # The Developer told why: ambiguous, missing, into QA's tests.
    dev_results = tool_results(fake_llm, "developer")
    assert any("matches 2 places in shop/prices.py (lines 5, 9)" in r for r in dev_results)
    assert any("old text not found in shop/prices.py" in r and "return amount * 1.2" in r for r in dev_results)
    assert any("belongs to QA's tests" in r for r in dev_results)
    assert any("ignoring indentation" in r for r in dev_results)

    # git: QA's commit holds only the new test file; the code commit changes both modules.
    log = app.workspace.git.log(10)
    code, tests = log[1], log[2]
    assert git(ws, "show", "--name-only", "--format=", tests["sha"]).split() == ["tests/test_discount.py"]
    # What a restart resumes the code stage from.
    assert "Test-File: tests/test_discount.py" in tests["message"] and "Module: shop/prices.py" in tests["message"]
    assert sorted(git(ws, "show", "--name-only", "--format=", code["sha"]).split()) == ["shop/cart.py",
                                                                                        "shop/prices.py"]
    assert (ws / "tests/test_cart.py").read_text() == SHOP["tests/test_cart.py"]  # the earlier test kept
    assert not (ws / "tests/test_more.py").exists()
    prices = (ws / "shop/prices.py").read_text()
    assert prices.startswith('"""Prices."""\n\n\ndef net(amount):\n    return amount\n')  # the rest untouched
    assert "def total(items, discount=0.0):\n    return sum(gross(i, discount)" in (ws / "shop/cart.py").read_text()
    assert app.workspace.runner.run_tests().passed_count == 3  # the full suite, earlier test included

    # The Tech Lead reviewed a diff, not whole files.
    [review] = [r for r in fake_llm.requests if "Review" in json.dumps(r.json.get("response_format", {}))]
    prompt = review.json["messages"][-1]["content"]
    assert "Diff of the change" in prompt and "@@" in prompt and "+def gross(amount, discount=0.0):" in prompt
    # The tool calls were real tool requests with usage in llm_calls.
    assert requests_of(fake_llm, "developer", lambda b: bool(b.get("tools")))
    rows = app.db.query("SELECT agent, COUNT(*) AS n, SUM(tokens_in) AS t FROM llm_calls WHERE task_id = ? "
                        "GROUP BY agent", (done.id,))
    usage = {r["agent"]: (r["n"], r["t"]) for r in rows}
    assert usage["qa"][0] >= len(QA) and usage["developer"][0] >= len(DEVELOPER) and usage["developer"][1] > 0


def test_ceo_sees_the_repository_map(fake_llm, build):
    app = build(fake_llm, {**TOOLS_ON, "company": {"goals": ["Discounts in the cart total"]}}, start=False)
    seed(app, SHOP)
    overview = app.orchestrator.workspace_summary()
    assert overview.startswith("7 files. Repository map (ranked for the goals):")
    assert overview.index("shop/cart.py:") < overview.index("shop/prices.py:")  # "cart" is in the goals
    assert "L6: def total(items)" in overview and "L8: def gross(amount)" in overview
