"""What the merge queue tests while a change is reviewed: the trees whose full suite passed, and the line of
candidates built one on another in the order their reviews were asked (in_review.py).

Only an optimisation's bookkeeping, in memory. A merge candidate whose tree is exactly one a full run passed
on (with the same QA files to check) is tested: the suite ran on that tree, byte for byte. Nothing here can
make a tree green that no run passed on; after a restart both are empty and every candidate is tested again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

GREEN_TREES = 256  # the newest trees kept


class GreenTrees:
    """Trees the full suite passed on, each with the QA files whose tests had to pass, and how long it took."""

    def __init__(self, size: int = GREEN_TREES):
        self._size = size
        self._seconds: OrderedDict[tuple[str, frozenset[str]], float] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, tree: str, qa_files: Iterable[str], seconds: float) -> None:
        key = (tree, frozenset(qa_files))
        with self._lock:
            self._seconds[key] = seconds
            self._seconds.move_to_end(key)
            while len(self._seconds) > self._size:
                self._seconds.popitem(last=False)

    def seconds(self, tree: str | None, qa_files: Iterable[str]) -> float | None:
        """How long the passing run on ``tree`` took, or None when no run passed on it."""
        if tree is None:
            return None
        with self._lock:
            return self._seconds.get((tree, frozenset(qa_files)))


class Pace:
    """A duration that recurs (a review's answer, a full run), as a moving average of the last ones seen."""

    def __init__(self, weight: float = 0.3):
        self._weight = weight
        self._value: float | None = None
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        with self._lock:
            self._value = seconds if self._value is None else (1 - self._weight) * self._value + self._weight * seconds

    @property
    def seconds(self) -> float | None:
        """The average so far; None before the first."""
        return self._value


@dataclass
class InReview:
    task_id: str
    candidate: str | None = None  # the merge candidate tested: those before it in the line (or main) with it
    tree: str | None = None


class ReviewLine:
    """Changes under review, in the order their reviews were asked (the order they are likely to be approved
    and merged in): each change's candidate is built on the candidate of the one before it, as the queue
    would build them. While main's tree is that of the line's start or of one of its candidates, the line
    holds (what merged leaves it); any other main (merged in another order, another node, a document)
    starts it again from main."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._start_tree: str | None = None
        self._line: list[InReview] = []

    def join(self, task_id: str) -> None:
        """``task_id``'s review was asked: it takes the last place (an earlier place of its own goes)."""
        with self._cv:
            self._drop(task_id)
            self._line.append(InReview(task_id))
            self._cv.notify_all()

    def base(self, task_id: str, main: str, main_tree: str, waiting: Callable[[], bool],
             poll: float = 0.05) -> str | None:
        """Where ``task_id``'s change is built: the candidate just before it in the line, or ``main``. Waits
        while a change before it has no candidate yet, as long as ``waiting()`` (its review is still to
        come); None when it stops waiting or ``task_id`` is not in the line."""
        with self._cv:
            self._follow(main_tree)
            while True:
                place = self._place(task_id)
                if place is None:
                    return None
                if all(e.candidate is not None for e in self._line[:place]):
                    return self._line[place - 1].candidate if place else main
                if not waiting():
                    return None
                self._cv.wait(poll)

    def fill(self, task_id: str, candidate: str, tree: str) -> None:
        """``task_id``'s candidate is made (the next change is built on it)."""
        with self._cv:
            if (place := self._place(task_id)) is not None:
                self._line[place].candidate, self._line[place].tree = candidate, tree
                self._cv.notify_all()

    def withdraw(self, task_id: str) -> None:
        """``task_id``'s change will not be merged as tested (rejected, failed, red, or changed): it leaves the
        line, with the candidates built on it."""
        with self._cv:
            self._drop(task_id)
            self._cv.notify_all()

    def _place(self, task_id: str) -> int | None:
        return next((i for i, e in enumerate(self._line) if e.task_id == task_id), None)

    def _drop(self, task_id: str) -> None:
        """``task_id`` leaves, and so do the candidates built on it; a change after it still waiting for its
        tests keeps its place (it is built on what is before it then)."""
        if (place := self._place(task_id)) is not None:
            self._line[place:] = [e for e in self._line[place + 1:] if e.candidate is None]

    def _follow(self, main_tree: str) -> None:
        if main_tree == self._start_tree:
            return
        for i, entry in enumerate(self._line):
            if entry.tree == main_tree:  # merged up to here, as built
                del self._line[:i + 1]
                self._start_tree = main_tree
                return
        self._line = [e for e in self._line if e.candidate is None]  # their bases are main from now on
        self._start_tree = main_tree
