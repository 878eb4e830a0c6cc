"""The warmer thread: each start when it is due, not in the order asked; nothing after it is closed."""

from __future__ import annotations

import threading
import time

from ai_agents.testing.started import Warmer
from tests.conftest import wait_for


class Recorder:
    """A runner as the warmer sees it (``Warmable``): what was started, in which order."""

    def __init__(self, name: str, started: list[str], boom: bool = False):
        self.name, self.started, self.boom = name, started, boom

    def start_ahead(self) -> None:
        self.started.append(self.name)
        if self.boom:
            raise OSError("no room for another process")


def test_a_start_asked_with_no_wait_goes_before_one_still_settling():
    started: list[str] = []
    warmer = Warmer()
    try:
        warmer.request(Recorder("stage", started), settle=30.0)  # a stage: waits for the model's answer first
        warmer.request(Recorder("queue", started), settle=0.0)   # the merge queue: its next run may come now
        wait_for(lambda: started, timeout=10)
        time.sleep(0.2)
        assert started == ["queue"]
    finally:
        warmer.close()
    assert started == ["queue"]  # what was still due when it closed is dropped, not started


def test_starts_due_together_go_in_the_order_asked_and_a_failure_stops_nothing():
    started: list[str] = []
    warmer = Warmer()
    try:
        for name in ("a", "b", "c"):
            warmer.request(Recorder(name, started, boom=name == "a"), settle=0.0)
        wait_for(lambda: len(started) == 3, timeout=10)
        assert started == ["a", "b", "c"]
        assert [t.name for t in threading.enumerate()].count("test-warmer") == 1
    finally:
        warmer.close()
    assert not warmer.request(Recorder("late", started), settle=0.0)
    assert "test-warmer" not in [t.name for t in threading.enumerate()]
