"""The attempt the current thread runs, as a context variable: its lease guard.

A worker binds the lease of the task it claimed (``bound``); code deep inside a
flow (an agent's model call, a test run, a merge, a deployment) then asks
``check()`` right before a side effect and reports ``progress()`` (a heartbeat)
after each step, without every signature in between carrying the lease. Outside
an attempt (the CLI, tests of a single part) both do nothing.

Per thread, like structlog's context variables: not shared state. Imports only
the error root, so adapters may use it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol


class AttemptGuard(Protocol):
    def check(self) -> None:
        """Raise :class:`ai_agents.errors.LeaseLost` unless the lease is still this attempt's."""

    def beat(self) -> None:
        """Heartbeat: the attempt made progress (renews the lease; raises LeaseLost when it is gone)."""

    def pause(self, seconds: float) -> None:
        """Wait ``seconds``, renewing the lease meanwhile; raise LeaseLost at once when the attempt is ended."""

    def adopt(self, pid: int) -> None:
        """``pid`` (and what runs below it) works for the attempt now, though another thread started it."""

    def disown(self, pid: int) -> None:
        """``pid`` no longer works for the attempt."""


_current: ContextVar[AttemptGuard | None] = ContextVar("ai_agents_attempt", default=None)


def current() -> AttemptGuard | None:
    return _current.get()


@contextmanager
def bound(guard: AttemptGuard) -> Iterator[AttemptGuard]:
    token = _current.set(guard)
    try:
        yield guard
    finally:
        _current.reset(token)


def check() -> None:
    """The fencing check: call right before an irreversible step (commit, merge, push, deploy)."""
    guard = _current.get()
    if guard is not None:
        guard.check()


def progress() -> None:
    """A step finished: renew the lease's heartbeat (and stop here if the lease is gone)."""
    guard = _current.get()
    if guard is not None:
        guard.beat()


def pause(seconds: float) -> None:
    """Wait ``seconds`` within the attempt (a back-off between tries): the lease stays renewed, and an ended
    attempt (a time limit, a shutdown, a reclaimed task) stops the wait at once with LeaseLost."""
    guard = _current.get()
    if guard is None:
        time.sleep(seconds)
    else:
        guard.pause(seconds)


@contextmanager
def working(pid: int) -> Iterator[None]:
    """While in the block, the process ``pid`` works for the attempt although this thread did not start it
    (a test process started ahead by another thread): ending the attempt's work (a time limit) kills it too,
    as it kills the processes the attempt's own thread started."""
    guard = _current.get()
    if guard is None:
        yield
        return
    guard.adopt(pid)
    try:
        yield
    finally:
        guard.disown(pid)
