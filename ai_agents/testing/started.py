"""A test process started, and the wait for its end: one run's sandbox, possibly made ahead of the run.

A sandboxed pytest run spends most of its CPU before it reads anything of the run: the interpreter and
pytest's imports (~0.25 CPU-seconds of ~0.35 on the build machine). ``TestRunner.warm()`` starts the
next run's process while the daemon waits on a model, and the run takes it when it is asked for, if
the sandbox it would be made of now is exactly the one the process was made in (``Plan.key``: the
whole command line and environment, which directory each bound path was, what the import views link
to). Nothing else is shared:
one process per run, in its own sandbox, as when it is started at the run; it has run no workspace
code and read nothing of the run until the daemon sends its configuration (``verdict.Channel.send``).
"""

from __future__ import annotations

import contextlib
import heapq
import json
import os
import select
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

import structlog

from ai_agents.errors import TestRunError, TestRunStopped
from ai_agents.testing.cgroup import PidsCgroup
from ai_agents.testing.result import tail
from ai_agents.testing.verdict import Channel

log = structlog.get_logger("ai_agents.testing")
# A start waits this long after it is asked for: stages that begin together first send their model requests
# and make their worktrees, then the processes start, one at a time, in what is left of the model's wait.
SETTLE = 0.3
STOP_POLL = 0.05  # how often a run that may be stopped (Started.wait's ``stop``) asks whether it is
_BIND_OPTIONS = frozenset({"--bind", "--ro-bind", "--bind-try", "--ro-bind-try", "--dev-bind"})


def sandbox_key(argv: Sequence[str], env: dict[str, str], cwd: Path, own: Sequence[Path],
                views: Sequence[Path] = ()) -> str:
    """What a run's process is made of, with this run's own directories (``own``) left out: the command,
    the environment, the directory (device, inode) behind the working directory and every bound path (so a
    worktree removed and made again at the same path is another sandbox), and what each of ``views`` (the
    directories of links to what the tests may import, site_view.py) links to."""
    mine = [os.path.realpath(d) for d in own]
    sources = [str(cwd), *(argv[i + 1] for i in range(len(argv) - 1) if argv[i] in _BIND_OPTIONS)]
    sources = [s for s in dict.fromkeys(sources)
               if not any(os.path.realpath(s) == m or os.path.realpath(s).startswith(m + os.sep) for m in mine)]

    def inode(path: str) -> tuple[int, int] | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def links(view: Path) -> list[tuple[str, str]]:
        try:
            return sorted((e.name, os.readlink(e.path)) for e in os.scandir(view) if e.is_symlink())
        except OSError:
            return []

    text = json.dumps([list(argv), sorted(env.items()), [(s, inode(s)) for s in sources],
                       [(str(v), links(v)) for v in views]])
    for i, d in enumerate(own):
        text = text.replace(str(d), f"<own{i}>")
    return text


def exited(proc: subprocess.Popen[bytes], timeout: float, stop: Callable[[], bool] | None = None) -> int | None:
    """``proc``'s exit status, or None if it is still running after ``timeout`` seconds, or once ``stop()`` is
    true (asked every ``STOP_POLL`` seconds). Woken by the exit itself (a pidfd): ``Popen.wait(timeout)`` polls
    with sleeps of up to 50 ms, which a run of 0.1 s feels."""
    deadline = time.monotonic() + timeout
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # not Linux 5.3+, or already reaped
        fd = None
    poller = select.poll()
    if fd is not None:
        poller.register(fd, select.POLLIN)
    try:
        while True:
            left = max(0.0, deadline - time.monotonic())
            step = left if stop is None else min(left, STOP_POLL)
            if fd is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    return proc.wait(timeout=step)
            else:
                if poller.poll(int(step * 1000)):
                    return proc.wait()
            if time.monotonic() >= deadline or (stop is not None and stop()):
                return None
    finally:
        if fd is not None:
            os.close(fd)


@dataclass
class Plan:
    """One pytest run's process as it would be started now: its command, environment, own directories
    (removed with it) and the protections it runs under."""

    launch: Callable[[PidsCgroup | None], list[str]]  # the whole command line (launcher, bubblewrap, boot)
    env: dict[str, str]
    cwd: Path
    report_dir: Path
    channel: Channel
    protections: list[str]
    use_bwrap: bool
    max_processes: int
    dirs: list[tempfile.TemporaryDirectory[str]] = field(default_factory=list)
    why_not: str | None = None  # why bubblewrap is not used
    views: list[Path] = field(default_factory=list)  # what the tests may import (site_view.py)

    @property
    def key(self) -> str:
        return sandbox_key(self.launch(None), self.env, self.cwd, [Path(d.name) for d in self.dirs], self.views)

    def discard(self) -> None:
        for d in self.dirs:
            d.cleanup()


class Started:
    """A test process running (or waiting for its configuration), with what must go when it ends."""

    def __init__(self, proc: subprocess.Popen[bytes], out: IO[bytes], output_file: Path,
                 cgroup: PidsCgroup | None):
        self.proc, self.out, self.output_file, self.cgroup = proc, out, output_file, cgroup

    @classmethod
    def spawn(cls, argv: list[str], env: dict[str, str], cwd: Path, output_file: Path, cgroup: PidsCgroup | None,
              pass_fds: Sequence[int] = (), started: Callable[[], None] | None = None) -> Started:
        """Start ``argv`` in a new session, its output to a file (not a pipe: a leftover background
        process holding a pipe open would otherwise keep the daemon waiting after the tests are done)."""
        out = open(output_file, "wb")  # noqa: SIM115 - closed by wait() or discard()
        try:
            proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
                                    pass_fds=tuple(pass_fds))
        except OSError as e:
            out.close()
            if cgroup:
                cgroup.remove()
            raise TestRunError(f"could not start the test process: {e}") from e
        if started is not None:
            started()
        return cls(proc, out, output_file, cgroup)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float, stop: Callable[[], bool] | None = None) -> tuple[int, bool, float, str]:
        """Wait up to ``timeout`` seconds from now, then kill the whole group (and what it left running).
        (exit code, timed out, seconds, the output's tail). ``stop``: once it is true, the run is killed and
        :class:`TestRunStopped` raised (its caller no longer wants its verdict)."""
        start = time.monotonic()
        timed_out = False
        try:
            rc = exited(self.proc, timeout, stop)
            if rc is None and stop is not None and stop():
                raise TestRunStopped("the run was stopped: its verdict is no longer wanted")
            if rc is None:
                timed_out = True
                log.warning("tests_timed_out", timeout=timeout, pid=self.proc.pid)
                rc = self.kill()
        finally:
            self.stop()
        duration = time.monotonic() - start
        with open(self.output_file, "rb") as fh:
            fh.seek(max(0, self.output_file.stat().st_size - 16_000))
            output = fh.read().decode("utf-8", errors="replace")
        return rc, timed_out, duration, tail(output)

    def kill(self) -> int:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        return self.proc.wait()

    def stop(self) -> None:
        """Always, at the end: also reaps what the tests left running in the background."""
        self.kill()
        if self.cgroup:
            self.cgroup.kill_all()
            self.cgroup.remove()
            self.cgroup = None
        self.out.close()


@dataclass
class WarmRun:
    """A pytest process started ahead of its run (``TestRunner.warm``): its plan and its process."""

    plan: Plan
    process: Started
    key: str
    lowered: bool = False  # started at the lowest priority: the run's is given back when it is used

    def discard(self) -> None:
        self.process.stop()
        self.plan.channel.close(wait=0.5)
        self.plan.discard()


class Warmable(Protocol):
    def start_ahead(self) -> None: ...


class Warmer:
    """One thread for the whole daemon that starts test processes ahead, each when it is due.

    A stage asks (``TestRunner.warm``) and goes on to ask its model at once: the process is started here,
    not in the stage's thread, ``SETTLE`` seconds later. One at a time, so a burst of stages starting
    together does not also start a burst of processes. The merge queue asks with no wait: its next run may
    come at once (a backlog), and no model answer comes first. A thread that lives as long as the daemon:
    bubblewrap's ``--die-with-parent`` ends the sandbox when the thread that started it ends."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, Warmable]] = []  # a heap: (when, order asked, runner)
        self._asked = 0
        self._thread: threading.Thread | None = None
        self._cond = threading.Condition()
        self._closed = False

    def request(self, runner: Warmable, settle: float = SETTLE) -> bool:
        """Have ``runner``'s process started ``settle`` seconds from now; False when the warmer is closed
        (the daemon is stopping)."""
        with self._cond:
            if self._closed:
                return False
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="test-warmer", daemon=True)
                self._thread.start()
            self._asked += 1
            heapq.heappush(self._due, (time.monotonic() + max(0.0, settle), self._asked, runner))
            self._cond.notify()
        return True

    def _next(self) -> Warmable | None:
        """The next runner due (waiting until it is); None once closed."""
        with self._cond:
            while not self._closed:
                wait = self._due[0][0] - time.monotonic() if self._due else None
                if wait is not None and wait <= 0:
                    return heapq.heappop(self._due)[2]
                self._cond.wait(wait)
            return None

    def _loop(self) -> None:
        while (runner := self._next()) is not None:
            try:
                runner.start_ahead()
            except Exception as e:  # a start ahead is an optimisation: never the end of the thread
                log.warning("tests_warm_failed", error=f"{type(e).__name__}: {e}"[:300])

    def close(self, timeout: float = 5.0) -> None:
        """Start nothing more (what is still due is dropped); the thread ends."""
        with self._cond:
            self._closed = True
            self._due.clear()
            thread = self._thread
            self._cond.notify()
        if thread is not None:
            thread.join(timeout)
