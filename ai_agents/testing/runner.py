"""TestRunner: run the workspace's tests as untrusted code, and report what happened.

The run is contained by (see sandbox.py for bubblewrap): a timeout that kills the
whole process group, resource limits set by a tiny launcher before exec, a pids
cgroup when the machine allows one (the only process limit that binds root), a
minimal environment, and bubblewrap when installed.

pytest's verdict is the daemon's (see verdict.py): records streamed by its own plugin over
an inherited pipe, QA's expected test ids, a canary that must fail; no report file the
tests could write is read. jest's likewise: the daemon's reporter over a pipe, a canary per test file
(jest_verdict.py).
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import structlog

from ai_agents import attempt as current_attempt
from ai_agents.config.models import TestingConfig
from ai_agents.domain import CheckResult
from ai_agents.errors import TestRunError, TestRunStopped, WorkspaceError
from ai_agents.file_system.paths import normalize
from ai_agents.testing import launcher
from ai_agents.testing.cgroup import PidsCgroup
from ai_agents.testing.detect import detect_framework
from ai_agents.testing.jest_verdict import REPORTER_SOURCE, canary_source, jest_config, judge_jest
from ai_agents.testing.outcome import decide, failure_result, signal_name
from ai_agents.testing.parsers import parse_test_results
from ai_agents.testing.result import TestFailure, TestResult
from ai_agents.testing.sandbox import Limits, SandboxProbe, bwrap_args, minimal_env
from ai_agents.testing.site_view import PROJECT_LOCK, SiteViews, daemon_sites, framework_entries, link_all, project_view
from ai_agents.testing.started import SETTLE, Plan, Started, Warmer, WarmRun
from ai_agents.testing.verdict import BOOT_SOURCE, TAMPERING, Channel, judge

log = structlog.get_logger("ai_agents.testing")
IDLE_NICE = 19  # a test process started ahead waits at the lowest priority (see TestRunner._start)


def can_raise_priority() -> bool:
    """Whether this process may lower a niceness it raised (CAP_SYS_NICE): a process started ahead waits at
    the lowest priority only if its run can have its own back."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            caps = next((int(line.split()[1], 16) for line in fh if line.startswith("CapEff:")), 0)
    except (OSError, ValueError):
        return False
    return bool(caps & (1 << 23))  # CAP_SYS_NICE

# Not `python -m pytest`: that puts the workspace first on sys.path, so a pytest.py (or _pytest/,
# pluggy.py...) written there would replace the test runner and report whatever it likes. With -P
# the workspace goes last instead (pytest_boot.py appends it): the tests still import its modules,
# which can shadow nothing.


class TestRunner:
    """Runs pytest or jest in ``project_path`` under a sandbox; see the module docstring."""

    __test__ = False  # not a pytest test class

    def __init__(self, project_path: Path | str, framework: str | None = None, timeout: float = 300, *,
                 sandbox: str = "auto", cpu_seconds: int = 300, memory_mb: int = 2048, max_processes: int = 256,
                 max_file_mb: int = 64, tests_dir: str = "tests", hidden_paths: Sequence[Path | str] = (),
                 read_only_paths: Sequence[Path | str] = (), project_env: Path | str | None = None,
                 shared_node_modules: Path | str | None = None, probe: SandboxProbe | None = None,
                 warmer: Warmer | None = None):
        if sandbox not in ("auto", "bwrap", "none"):
            raise ValueError(f"sandbox must be auto, bwrap or none, not {sandbox!r}")
        self.project_path = Path(os.path.realpath(project_path))
        self.framework = None if framework in (None, "auto") else framework
        self.timeout = timeout
        self.sandbox = sandbox
        self.limits = Limits(cpu_seconds, memory_mb, max_processes, max_file_mb)
        self.tests_dir = tests_dir
        # The daemon's home (ssh keys, git credentials) and the workspace's parent (by default
        # data/: database, logs, backups) are hidden; callers add the config directory.
        self.hidden_paths = [Path.home(), Path("/root"), self.project_path.parent, *map(Path, hidden_paths)]
        # What the clean slate keeps between runs (workspace-relative): the tests may not change it.
        self.read_only_paths = [self.project_path / p for p in read_only_paths]
        # The project's own virtualenv (its packages, installed by the daemon): read-only, appended to sys.path.
        self.project_env = Path(project_env) if project_env is not None else None
        # A task's worktree has no node_modules of its own: the main workspace's is linked in (read-only
        # in the sandbox, like every node_modules).
        self.shared_node_modules = Path(shared_node_modules) if shared_node_modules is not None else None
        self._probe = probe or SandboxProbe()  # shared by the runners of one daemon
        self.nice = 0  # added to the test process's niceness (runs that may be thrown away: see at())
        self._spare: WarmRun | None = None  # the next pytest run's process, started ahead (warm())
        self._wanted = False  # warm() asked for one, and no run or cool() has come since
        self._spare_lock = threading.Lock()
        self._warmer = warmer  # the daemon's thread that starts them (None: warm() starts it itself)

    def at(self, path: Path | str, *, nice: int = 0) -> TestRunner:
        """This runner for another checkout of the same project beside this one (a merge-queue candidate's
        worktree): the same limits, hidden and read-only paths, project environment; ``nice`` added to its
        test processes' niceness."""
        other = copy.copy(self)
        other.nice = nice
        other._spare, other._wanted, other._spare_lock = None, False, threading.Lock()  # one checkout's own
        other.project_path = Path(os.path.realpath(path))
        other.hidden_paths = [other.project_path.parent if p == self.project_path.parent else p
                              for p in self.hidden_paths]
        other.read_only_paths = [other.project_path / p.relative_to(self.project_path) for p in self.read_only_paths]
        return other

    @classmethod
    def from_config(cls, cfg: TestingConfig, project_path: Path | str,
                    hidden_paths: Sequence[Path | str] = (), read_only_paths: Sequence[Path | str] = (),
                    project_env: Path | str | None = None,
                    shared_node_modules: Path | str | None = None, probe: SandboxProbe | None = None,
                    warmer: Warmer | None = None) -> TestRunner:
        return cls(project_path, cfg.framework, cfg.timeout, sandbox=cfg.sandbox, cpu_seconds=cfg.cpu_seconds,
                   memory_mb=cfg.memory_mb, max_processes=cfg.max_processes, max_file_mb=cfg.max_file_mb,
                   tests_dir=cfg.tests_dir, hidden_paths=hidden_paths, read_only_paths=read_only_paths,
                   project_env=project_env, shared_node_modules=shared_node_modules, probe=probe, warmer=warmer)

    # --- public API -----------------------------------------------------------------
    def detect_framework(self) -> str:
        return self.framework or detect_framework(self.project_path, self.tests_dir)

    def run_tests(self, paths: Sequence[str] | None = None, *, expected: Sequence[str] | None = None,
                  stop: Callable[[], bool] | None = None) -> TestResult:
        """Run the whole suite (or ``paths``, relative to the project).

        ``expected``: node ids (pytest) that must each be reported run and passed for a pass,
        e.g. :func:`~ai_agents.testing.verdict.expected_test_ids` of QA's file. ``stop``: asked while the
        run goes on; once true, the run is killed and :class:`~ai_agents.errors.TestRunStopped` raised.
        """
        return self._run([self._test_arg(p) for p in paths or []], expected, stop)

    def run_specific_test(self, test_path: str, *, expected: Sequence[str] | None = None) -> TestResult:
        """Run one file or node id (``tests/test_x.py::test_y``)."""
        return self._run([self._test_arg(test_path)], expected)

    def ensure_runnable(self, framework: str | None = None) -> None:
        """Raise TestRunError if ``framework`` (default: detected) cannot run here (not installed)."""
        try:
            self._framework_command(framework or self.detect_framework(), Path(tempfile.gettempdir()), [])
        except TestRunError as e:
            raise TestRunError(f"the test framework could not run: {e}") from e

    def parse_test_results(self, report: str | Path, framework: str | None = None) -> TestResult:
        return parse_test_results(report, framework or self.detect_framework(), self.project_path)

    def check(self) -> CheckResult:
        """doctor: the framework is installed and the sandbox usable (or why not)."""
        framework = self.detect_framework()
        data: dict[str, object] = {"framework": framework, "sandbox_mode": self.sandbox}
        try:
            self._framework_command(framework, Path(tempfile.gettempdir()), [])
            bwrap, why = self._use_bwrap()
        except TestRunError as e:
            return CheckResult("tests", False, str(e), data)
        data["sandbox"] = "bwrap" if bwrap else "none"
        detail = f"{framework} runnable; sandbox: " + ("bubblewrap" if bwrap else f"none ({why})")
        probe = PidsCgroup.create(1)
        if probe is not None:
            probe.remove()
        elif os.geteuid() == 0:
            detail += "; WARNING: running as root without a pids cgroup, the process limit is not enforced"
        data["pids_cgroup"] = probe is not None
        return CheckResult("tests", True, detail, data)

    # --- the run ----------------------------------------------------------------------
    def _test_arg(self, path: str) -> str:
        file_part, sep, rest = str(path).partition("::")
        try:
            rel = normalize(file_part).as_posix()
        except WorkspaceError as e:
            raise TestRunError(f"test path refused: {e}") from e
        if any(part.startswith("-") for part in rel.split("/")):
            raise TestRunError(f"test path {path!r} looks like an option")
        return rel + sep + rest

    def _use_bwrap(self) -> tuple[str | None, str | None]:
        """(bubblewrap's path when the run uses it, else None; why not). Probed once per daemon (SandboxProbe);
        ``sandbox: bwrap`` makes it mandatory."""
        if self.sandbox == "none":
            return None, "disabled by configuration"
        path, why = self._probe()
        if why is None:
            return path, None
        if self.sandbox == "bwrap":
            raise TestRunError(f"testing.sandbox is 'bwrap' but {why}")
        return None, why

    def _framework_command(self, framework: str, report: Path, args: list[str],
                           canary: Path | None = None) -> tuple[list[str], Path, bool]:
        """(command, report file, limit address space?) for ``framework``; ``canary``: jest's setup file."""
        if framework == "pytest":
            try:
                import pytest  # noqa: F401 - the daemon's interpreter runs the tests
            except ImportError as e:
                raise TestRunError("pytest is not installed in the daemon's Python environment") from e
            # No report file: the daemon's plugin streams records over a pipe (verdict.py).
            # --continue-on-collection-errors: a test module that does not import (every must-fail run before
            # the code exists) is one collection error, reported as such; without it pytest stops the session
            # as "Interrupted" and formats that exception's traceback through its own source files (an AST
            # parse of each), which cost a must-fail run more CPU than its tests. The other modules still run.
            return ([sys.executable, "-P", "-c", BOOT_SOURCE.read_text(encoding="utf-8"), "-q", "-p",
                     "no:cacheprovider", "-p", "no:junitxml", "-p", "no:pastebin", "--color=no", "--tb=short",
                     "--continue-on-collection-errors", *args], report / "none", True)
        if framework == "jest":
            if not shutil.which("node"):
                raise TestRunError("jest needs node, which is not on PATH")
            local, shared = self.project_path / "node_modules", self.shared_node_modules
            if shared is not None and (shared / "jest").is_dir() and not (local.exists() or local.is_symlink()):
                local.symlink_to(shared.resolve(), target_is_directory=True)
            jest = self.project_path / "node_modules" / "jest" / "bin" / "jest.js"
            if not jest.is_file():
                raise TestRunError("jest is not installed in the project (no node_modules/jest; declare it in "
                                   "package.json's devDependencies so the daemon installs it)")
            ts_jest = (self.project_path / "node_modules" / "ts-jest").is_dir()
            config = jest_config(self.project_path, self.tests_dir, REPORTER_SOURCE,
                                 report / "cache", ts_jest, canary)
            # RLIMIT_DATA instead of RLIMIT_AS: V8 reserves far more address space than it uses.
            return ([str(shutil.which("node")), str(jest), "--ci", "--config", config, "--no-watchman",
                     *(["--runTestsByPath", *args] if args else [])], report / "none", False)
        raise TestRunError(f"unknown test framework {framework!r}")

    def _run(self, args: list[str], expected: Sequence[str] | None = None,
             stop: Callable[[], bool] | None = None) -> TestResult:
        if not self.project_path.is_dir():
            raise TestRunError(f"project path {self.project_path} does not exist")
        framework = self.detect_framework()
        if framework == "pytest":
            return self._run_pytest(args, expected, stop)
        bwrap, why_not = self._use_bwrap()
        use_bwrap = bwrap is not None
        with tempfile.TemporaryDirectory(prefix="ai-agents-tests-", ignore_cleanup_errors=True) as tmp, \
                tempfile.TemporaryDirectory(prefix="ai-agents-canary-", ignore_cleanup_errors=True) as canary_tmp:
            report_dir = Path(tmp)
            for sub in ("home", "tmp"):
                (report_dir / sub).mkdir()
            # jest's canary (jest_verdict.py): written here, outside the writable report directory, read-only.
            channel = Channel(str(self.project_path), self.tests_dir.strip("/") or "tests")
            canary = Path(canary_tmp) / "canary.js"
            canary.write_text(canary_source(channel.canary_name, channel.canary_nonce), encoding="utf-8")
            try:
                command, report, limit_as = self._framework_command(framework, report_dir, args, canary)
            except TestRunError as e:
                return failure_result("could_not_run", framework, str(e), use_bwrap)
            node = shutil.which("node")
            extra_path = [os.path.dirname(os.path.realpath(node))] if node and framework == "jest" else []
            if use_bwrap:
                keep = [*self._interpreter_dirs(), *(Path(p).parent for p in extra_path)]
                if framework == "jest":  # the daemon's reporter and, wherever it lives, node_modules: read-only
                    keep += [REPORTER_SOURCE, canary.parent,
                             Path(os.path.realpath(self.project_path / "node_modules"))]
                command = [*bwrap_args(str(bwrap), self.project_path,
                                       [report_dir], self.hidden_paths, keep, self.read_only_paths), *command]
            cgroup = PidsCgroup.create(self.limits.max_processes)
            protections = self._protections(use_bwrap, why_not, cgroup is not None)
            if framework == "jest":
                protections.append("verdict: the daemon's reporter streams records over an inherited pipe; every "
                                   "expected test must pass, a canary in every test file must fail (test_tampering)")
            argv = self._launcher(limit_as, cgroup, command)
            env = minimal_env(report_dir / "home", report_dir / "tmp", extra_path)
            if framework == "jest":
                result = self._run_jest(argv, env, report_dir, cgroup, expected, channel, stop)
                duration = result.duration
            else:
                rc, timed_out, duration, output = self._execute(argv, env, report_dir / "output.txt", cgroup,
                                                                stop=stop)
                result = decide(framework, rc, timed_out, report if report.exists() else None, output,
                                self.timeout, self.project_path)
        return self._logged(result, duration, use_bwrap, protections)

    @staticmethod
    def _logged(result: TestResult, duration: float, use_bwrap: bool, protections: list[str],
                started_ahead: bool = False) -> TestResult:
        result.duration = round(duration, 3)
        result.sandbox = "bwrap" if use_bwrap else "none"
        result.protections = protections
        result.started_ahead = started_ahead
        log.info("tests_run", framework=result.framework, outcome=result.outcome, passed=result.passed_count,
                 failed=result.failed_count, errors=result.errors, duration=result.duration, sandbox=result.sandbox,
                 started_ahead=started_ahead)
        return result

    @staticmethod
    def _interpreter_dirs() -> list[Path]:
        return [Path(sys.prefix), Path(sys.base_prefix), Path(os.path.realpath(sys.executable)).parent.parent]

    def _launcher(self, limit_as: bool, cgroup: PidsCgroup | None, command: list[str]) -> list[str]:
        """The tiny launcher's command line (launcher.py): limits, niceness and the cgroup, then ``command``."""
        spec = {"rlimits": self.limits.rlimits(address_space=limit_as), "nice": self.nice,
                "cgroup_procs": str(cgroup.procs_file) if cgroup else None}
        return [sys.executable, "-I", "-S", launcher.__file__, json.dumps(spec), "--", *command]

    # --- pytest: one process per run, possibly started ahead (started.py) ------------------------------
    def warm(self, settle: float = SETTLE) -> None:
        """Have the next pytest run's process started now (the daemon is about to wait on a model): its
        interpreter and pytest's imports are done when the run is asked for. At most one per runner; it is
        used only if the run's sandbox is still exactly the one it was made in, else dropped. Started by the
        daemon's :class:`Warmer` thread when there is one (the caller does not wait), ``settle`` seconds
        later, else here. Never raises."""
        with self._spare_lock:
            if self._wanted:
                return
            self._wanted = True
        if self._warmer is None or not self._warmer.request(self, settle):
            self.start_ahead()

    def start_ahead(self) -> None:
        """The start :meth:`warm` asked for, unless a run or :meth:`cool` came first."""
        try:
            with self._spare_lock:
                if not self._wanted or (self._spare is not None and self._spare.process.alive()):
                    return
                old, self._spare = self._spare, None
            if old is not None:
                old.discard()
            # Only in bubblewrap's sandbox: without it, any test code run meanwhile could find the waiting
            # process (same user, one pid space) and write into its configuration pipe first.
            if not self.project_path.is_dir() or self.detect_framework() != "pytest" or self._use_bwrap()[0] is None:
                return
            spare = self._start(self._plan_pytest(), idle=True)
        except (TestRunError, OSError) as e:
            log.info("tests_warm_skipped", error=str(e)[:300])
            return
        with self._spare_lock:
            if self._wanted:
                old, self._spare = self._spare, spare
            else:
                old = spare  # taken by a run meanwhile, or cooled: not wanted any more
        if old is not None:
            old.discard()

    def cool(self) -> None:
        """Stop a process started ahead and not used (the stage that asked for it is over)."""
        with self._spare_lock:
            self._wanted = False
            spare, self._spare = self._spare, None
        if spare is not None:
            spare.discard()

    def _plan_pytest(self) -> Plan:
        """The pytest run's process as it would be started now (its directories made; nothing started)."""
        bwrap, why_not = self._use_bwrap()
        report_tmp = tempfile.TemporaryDirectory(prefix="ai-agents-tests-", ignore_cleanup_errors=True)
        site_tmp = tempfile.TemporaryDirectory(prefix="ai-agents-site-", ignore_cleanup_errors=True)
        report_dir = Path(report_tmp.name)
        try:
            for sub in ("home", "tmp"):
                (report_dir / sub).mkdir()
            command, _, limit_as = self._framework_command("pytest", report_dir, [])
            views = self._site_views(Path(site_tmp.name) / "site")
            if bwrap is not None:  # the views of what the tests may import: read-only
                keep = [*self._interpreter_dirs(), Path(site_tmp.name)]
                if self.project_env is not None and self._project_site():
                    keep.append(self.project_env)
                command = [*bwrap_args(bwrap, self.project_path, [report_dir], self.hidden_paths, keep,
                                       self.read_only_paths), *command]
        except BaseException:
            report_tmp.cleanup()
            site_tmp.cleanup()
            raise
        channel = Channel(str(self.project_path), self.tests_dir.strip("/") or "tests",
                          extra_paths=[str(views.project), str(views.framework)], hide_paths=daemon_sites())
        protections = [views.describe(), "verdict: the daemon's reporter streams records over an inherited pipe; "
                       "every expected test must pass, a canary must fail, an audit hook and a snapshot of the "
                       "framework catch tampering (test_tampering)"]
        env = {**minimal_env(report_dir / "home", report_dir / "tmp"), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
        return Plan(partial(self._launcher, limit_as, command=command), env, self.project_path,
                    report_dir, channel, protections, bwrap is not None, self.limits.max_processes,
                    [report_tmp, site_tmp], why_not, [views.framework, views.project])

    def _start(self, plan: Plan, *, idle: bool = False) -> WarmRun:
        """Start ``plan``'s process, waiting for its configuration (sent by the run). ``idle``: started ahead;
        when the daemon may raise a process's priority again (CAP_SYS_NICE, as root), it starts at the lowest
        one, so its imports take only CPU nothing else wants, and gets the run's back when it is used."""
        key = plan.key
        cgroup = PidsCgroup.create(plan.max_processes)
        fds = plan.channel.open(hold=True)
        try:
            process = Started.spawn(plan.launch(cgroup), {**plan.env, **plan.channel.env}, plan.cwd,
                                    plan.report_dir / "output.txt", cgroup, pass_fds=fds,
                                    started=plan.channel.started)
        except BaseException:
            plan.channel.close(wait=0.5)
            plan.discard()
            raise
        lowered = False
        if idle and self.nice == 0 and can_raise_priority():
            # Its process group (launcher, then bubblewrap and the test process it forks): what is forked
            # later has the priority of its parent. Not for a runner with a niceness of its own: the launcher
            # adds it, maybe after this, and its runs yield the CPU already.
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PGRP, process.proc.pid, IDLE_NICE)
                lowered = True
        plan.protections[:0] = self._protections(plan.use_bwrap, plan.why_not, cgroup is not None)
        return WarmRun(plan, process, key, lowered)

    def _restore(self, run: WarmRun) -> bool:
        """A process started ahead at the lowest priority gets the run's own back (the daemon's: only a runner
        without a niceness of its own lowers it), for its whole process group. False if it cannot."""
        if not run.lowered:
            return True
        try:
            os.setpriority(os.PRIO_PGRP, run.process.proc.pid, os.getpriority(os.PRIO_PROCESS, 0))
        except OSError as e:
            log.info("tests_warm_priority_not_restored", error=str(e))
            return False
        return True

    def _run_pytest(self, args: list[str], expected: Sequence[str] | None,
                    stop: Callable[[], bool] | None = None) -> TestResult:
        """pytest under the daemon's reporter; the daemon judges its records (verdict.py)."""
        try:
            plan = self._plan_pytest()
        except TestRunError as e:
            return failure_result("could_not_run", "pytest", str(e), self._use_bwrap()[0] is not None)
        with self._spare_lock:
            run, self._spare, self._wanted = self._spare, None, False
        if run is not None and (run.key != plan.key or not run.process.alive() or not self._restore(run)):
            log.info("tests_warm_dropped", reason="the sandbox changed" if run.key != plan.key else "it ended")
            run.discard()
            run = None
        ahead = run is not None
        if run is None:
            run = self._start(plan)
        else:
            plan.discard()
        channel = run.plan.channel
        try:
            channel.plugins, channel.trusted = self._tracked()
            # Started by another thread maybe (the warmer): the attempt's time limit kills it all the same.
            with current_attempt.working(run.process.proc.pid):
                channel.send(args)
                rc, timed_out, duration, output = run.process.wait(self.timeout, stop)
        except TestRunStopped:
            run.plan.discard()
            raise
        finally:
            channel.close()
        try:
            result = judge(channel, rc, timed_out, expected)
            output = channel.scrub(output)
            if result.outcome == "timeout":
                result.failures.insert(0, TestFailure(test_name="timeout", error_message=(
                    f"the tests did not finish within {self.timeout:g}s and were killed (an endless loop or a wait "
                    "that never ends?)"), traceback=output[-2000:]))
            elif rc < 0 and not result.tampering:
                result.failures.insert(0, TestFailure(test_name="test process", error_message=(
                    f"the test process was killed by {signal_name(rc)} (a resource limit: CPU time, memory or "
                    "processes?)"), traceback=output[-2000:]))
            elif result.outcome in ("could_not_run", "failed") and not result.failures:
                last = " / ".join([ln.strip() for ln in output.splitlines() if ln.strip()][-3:]) or "no output"
                why = f"killed by signal {-rc}" if rc < 0 else f"exit status {rc}"
                result.failures.append(TestFailure(test_name=result.outcome, error_message=f"pytest {why}: {last}",
                                                   traceback=output[-2000:]))
            result = self._finish(result, rc, output, duration)
        finally:
            run.plan.discard()
        return self._logged(result, duration, run.plan.use_bwrap, run.plan.protections, ahead)

    def _run_jest(self, argv: list[str], env: dict[str, str], report_dir: Path, cgroup: PidsCgroup | None,
                  expected: Sequence[str] | None, channel: Channel,
                  stop: Callable[[], bool] | None = None) -> TestResult:
        """jest under the daemon's config, reporter and canary; the daemon judges its records (jest_verdict.py)."""
        fds = channel.open()
        try:
            rc, timed_out, duration, output = self._execute(argv, env | channel.env, report_dir / "output.txt",
                                                            cgroup, pass_fds=fds, started=channel.started,
                                                            stop=stop)
        finally:
            channel.close()
        result = judge_jest(channel, rc, timed_out, expected, self.project_path, canary=True)
        if result.outcome == "timeout":
            result.failures.insert(0, TestFailure(test_name="timeout", error_message=(
                f"the tests did not finish within {self.timeout:g}s and were killed")))
        elif result.outcome == "could_not_run" and not result.failures:
            last = " / ".join([ln.strip() for ln in output.splitlines() if ln.strip()][-3:]) or "no output"
            result.failures.append(TestFailure(test_name="could_not_run", error_message=f"jest exit status {rc}: "
                                               f"{last}", traceback=output[-2000:]))
        return self._finish(result, rc, output, duration)

    @staticmethod
    def _finish(result: TestResult, rc: int, output: str, duration: float) -> TestResult:
        """The daemon's verdict with the run's facts; a detected tampering is logged as an alert."""
        if result.tampering:
            log.warning(TAMPERING, alert=True, alert_name=TAMPERING, reasons=result.tampering[:5],
                        message="the test process tried to change its own verdict; the run counts as failed")
        result.exit_code = rc
        result.output_tail = output
        result.duration = duration
        return result

    def _site_views(self, directory: Path) -> SiteViews:
        """This run's views of what the tests may import (site_view.py): pytest, and what the lock pins."""
        framework = framework_entries()
        lock = self.project_path / PROJECT_LOCK
        text = lock.read_text(encoding="utf-8", errors="replace") if lock.is_file() and not lock.is_symlink() else ""
        project = project_view(self._project_site(), text)
        if project.missing or project.other:
            log.warning("tests_env_mismatch", lock=PROJECT_LOCK, missing=project.missing[:10],
                        other_version=project.other[:10])
        return SiteViews(link_all(directory / "framework", framework), link_all(directory / "project",
                                                                                project.entries), project)

    def _project_site(self) -> Path | None:
        """The project env's site-packages, if the daemon created one."""
        if self.project_env is None:
            return None
        found = sorted(self.project_env.glob("lib/python*/site-packages"))
        return found[0] if found else None

    def _tracked(self) -> tuple[list[str] | None, list[str] | None]:
        """(tracked conftest.py files, tracked files under the tests directory), absolute; (None, None)
        without git. Only the first may load as plugins; only the second count as QA's code in the run."""
        if not (self.project_path / ".git").exists() or not shutil.which("git"):
            return None, None
        try:
            out = subprocess.run(["git", "-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-C",
                                  str(self.project_path), "ls-files", "-z"],
                                 capture_output=True, timeout=30, check=True, stdin=subprocess.DEVNULL).stdout
        except (OSError, subprocess.SubprocessError):
            return None, None
        files = [p for p in out.decode(errors="replace").split("\0") if p]
        tests = self.tests_dir.strip("/") + "/"
        real = [os.path.realpath(self.project_path / p) for p in files]
        return ([r for p, r in zip(files, real, strict=True) if p.rsplit("/", 1)[-1] == "conftest.py"],
                [r for p, r in zip(files, real, strict=True) if p.startswith(tests)])

    def _execute(self, argv: list[str], env: dict[str, str], output_file: Path, cgroup: PidsCgroup | None,
                 pass_fds: Sequence[int] = (), started: Callable[[], None] | None = None,
                 stop: Callable[[], bool] | None = None) -> tuple[int, bool, float, str]:
        """Run ``argv`` in a new session; on timeout kill the whole group. (exit code, timed out, secs, output)."""
        process = Started.spawn(argv, env, self.project_path, output_file, cgroup, pass_fds, started)
        return process.wait(self.timeout, stop)

    def _protections(self, use_bwrap: bool, why_not: str | None, cgroup: bool) -> list[str]:
        lim = self.limits
        lines = [f"timeout {self.timeout:g}s kills the whole process group",
                 f"rlimits: CPU {lim.cpu_seconds}s, memory {lim.memory_mb} MB, {lim.max_processes} processes, "
                 f"files up to {lim.max_file_mb} MB",
                 "environment: PATH, HOME, TMPDIR, LANG and no-colour flags only; nothing inherited from the daemon"]
        if use_bwrap:
            lines.append("bubblewrap: no network; own pid/ipc/uts namespaces; read-only system and .git; "
                         "private /tmp; home and data directories hidden")
        else:
            lines.append(f"no sandbox: {why_not}")
        if cgroup:
            lines.append(f"pids cgroup: at most {lim.max_processes} processes, all killed at the end")
        elif os.geteuid() == 0:
            lines.append("WARNING: root without a pids cgroup: the process limit is not enforced")
        return lines
