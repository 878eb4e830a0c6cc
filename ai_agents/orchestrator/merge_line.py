"""The merge queue's waiting line: the branches at the queue in the order they came, each with the candidate it
would make main, so that a branch can be tested ahead on top of the one in front of it (merge_queue.py).

Only an optimisation's bookkeeping, in memory: what decides a merge is the row in SQLite and the
compare-and-swap on main. After a restart the line is empty and every branch is built on main again.
"""

from __future__ import annotations

import threading


class WaitingLine:
    """Tickets in arrival order; the lowest ticket present is at the front."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._next = 0
        self._candidates: dict[int, str | None] = {}  # ticket -> the candidate it would make main (None: unknown)

    def join(self) -> int:
        with self._cv:
            ticket = self._next
            self._next += 1
            self._candidates[ticket] = None
            return ticket

    def leave(self, ticket: int) -> None:
        with self._cv:
            self._candidates.pop(ticket, None)
            self._cv.notify_all()

    def publish(self, ticket: int, candidate: str | None) -> None:
        """``ticket``'s branch would now make main ``candidate`` (None: not known, e.g. its run ahead was red)."""
        with self._cv:
            if ticket in self._candidates:
                self._candidates[ticket] = candidate
                self._cv.notify_all()

    def wait(self, ticket: int, tested_on: str | None, timeout: float = 1.0) -> str | None:
        """Block until ``ticket`` is at the front (None), or until the branch just in front of it would make
        main a candidate other than ``tested_on`` (that candidate: test on top of it)."""
        with self._cv:
            while True:
                ahead = [t for t in self._candidates if t < ticket]
                if not ahead:
                    return None
                candidate = self._candidates[max(ahead)]
                if candidate is not None and candidate != tested_on:
                    return candidate
                self._cv.wait(timeout)
