"""The merge queue's waiting line (orchestrator/merge_line.py): who is in front, and what to test on."""

from __future__ import annotations

import threading

from ai_agents.orchestrator.merge_line import WaitingLine


def test_each_branch_tests_on_the_candidate_just_in_front_of_it_and_moves_up_as_others_leave():
    line = WaitingLine()
    a, b, c = line.join(), line.join(), line.join()
    assert line.wait(a, None) is None  # at the front: build on main
    line.publish(a, "A")
    line.publish(b, "AB")
    assert line.wait(b, None) == "A"  # tested on a's candidate
    assert line.wait(c, None) == "AB"  # chained: on b's, not a's
    line.publish(b, None)  # b's run ahead was red: c waits for what b will really make main
    got: list[str | None] = []
    waiter = threading.Thread(target=lambda: got.append(line.wait(c, "AB", timeout=0.05)))
    waiter.start()
    waiter.join(0.3)
    assert waiter.is_alive() and not got
    line.leave(a)  # a merged (or was sent back): b is at the front, c still behind b
    line.publish(b, "B")
    waiter.join(5)
    assert got == ["B"]
    line.leave(b)
    assert line.wait(c, "B") is None
