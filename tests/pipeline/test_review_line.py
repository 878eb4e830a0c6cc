"""What the merge queue keeps of its runs while changes are reviewed (orchestrator/review_line.py): the line of
changes in the order their reviews were asked, what each is built on, and the trees whose run passed."""

from __future__ import annotations

import threading

from ai_agents.orchestrator.review_line import GreenTrees, Pace, ReviewLine

ALWAYS = lambda: True  # noqa: E731 - the review is still to come


def test_each_change_is_built_on_the_one_reviewed_before_it_and_waits_for_its_candidate():
    line = ReviewLine()
    line.join("a")
    line.join("b")
    assert line.base("a", "M", "tM", ALWAYS) == "M"  # first in line: on main
    # b's tests passed before a's: b waits for a's candidate while its own review is still to come...
    got: list[str | None] = []
    waiter = threading.Thread(target=lambda: got.append(line.base("b", "M", "tM", ALWAYS, poll=0.01)))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive() and not got
    line.fill("a", "A", "tA")
    waiter.join(5)
    assert got == ["A"]
    # ...and stops waiting when its review comes first: nothing is built then.
    line.join("c")
    line.join("d")
    assert line.base("d", "M", "tM", lambda: False) is None
    assert line.base("not in line", "M", "tM", ALWAYS) is None


def test_a_withdrawn_change_takes_the_candidates_built_on_it_and_leaves_the_changes_still_tested_their_place():
    line = ReviewLine()
    for task in ("a", "b", "c", "d"):
        line.join(task)
    line.fill("a", "A", "tA")
    line.fill("b", "AB", "tAB")  # built on a's
    line.withdraw("a")  # a was sent back: b's candidate holds a's change, it goes; c and d keep their places
    assert line.base("c", "M", "tM", ALWAYS) == "M"
    line.fill("c", "C", "tC")
    assert line.base("d", "M", "tM", ALWAYS) == "C"
    assert line.base("b", "M", "tM", ALWAYS) is None  # gone with a
    line.join("a")  # a's next attempt is reviewed: the last place
    line.fill("d", "CD", "tCD")
    assert line.base("a", "M", "tM", ALWAYS) == "CD"


def test_the_line_follows_main_while_it_merges_as_built_and_starts_again_when_it_does_not():
    line = ReviewLine()
    for task in ("a", "b", "c"):
        line.join(task)
    line.fill("a", "A", "tA")
    line.fill("b", "AB", "tAB")
    # a merged as built: main's tree is a's candidate's (the commit is the queue's own, not A).
    assert line.base("c", "MA", "tA", ALWAYS) == "AB"
    line.fill("c", "ABC", "tABC")
    line.join("e")
    # Main moved some other way (b was approved after c, a document, another node): every candidate in the line
    # holds a main that will not be; what is still waiting for its tests is built on main.
    assert line.base("e", "MX", "tX", ALWAYS) == "MX"
    assert line.base("b", "MX", "tX", ALWAYS) is None and line.base("c", "MX", "tX", ALWAYS) is None


def test_green_trees_are_told_apart_by_the_qa_files_whose_tests_had_to_pass_and_the_oldest_go():
    green = GreenTrees(size=2)
    green.add("t1", ["tests/test_a.py"], 0.5)
    assert green.seconds("t1", {"tests/test_a.py"}) == 0.5
    assert green.seconds("t1", ["tests/test_b.py"]) is None  # the same tree, another task's tests to check
    assert green.seconds(None, []) is None
    green.add("t2", [], 1.0)
    green.add("t3", [], 1.5)
    assert green.seconds("t1", ["tests/test_a.py"]) is None and green.seconds("t3", []) == 1.5


def test_a_pace_is_a_moving_average_of_the_durations_seen():
    pace = Pace(weight=0.5)
    assert pace.seconds is None
    pace.add(2.0)
    assert pace.seconds == 2.0
    pace.add(1.0)
    assert pace.seconds == 1.5
