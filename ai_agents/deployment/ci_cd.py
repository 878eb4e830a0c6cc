"""``type: ci_cd``: the push (done by the caller) triggers the pipeline; optionally wait for its verdict."""

from __future__ import annotations

import json
import shlex
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Literal

from ai_agents.config.models import CiCdDeployConfig
from ai_agents.deployment.records import DeployType, StepRecord
from ai_agents.deployment.steps import StepFailedError, StepRecorder
from ai_agents.deployment.transport import LocalShell, substitute
from ai_agents.domain import CheckResult

Outcome = Literal["success", "failure", "pending"]

# status_command exit code meaning "still running" (EX_TEMPFAIL from sysexits.h).
PENDING_EXIT = 75
_WORDS: dict[str, Outcome] = {
    **dict.fromkeys(("success", "succeeded", "passed", "ok", "completed"), "success"),
    **dict.fromkeys(("failure", "failed", "error", "errored", "cancelled", "canceled"), "failure"),
    **dict.fromkeys(("pending", "running", "in_progress", "queued", "waiting", "requested"), "pending"),
}


class CiCdStrategy:
    """Poll ``status_command`` (exit 0 / 75 = pending / other) or ``status_url`` until a verdict.

    With neither configured the deploy is recorded as "triggered (pushed)": the
    pipeline's result is not ours to see. Rollback runs ``rollback_command`` (with
    ``{commit}`` = the previous good commit) when one is given; otherwise rolling
    back a pipeline deploy means reverting the commit on the branch, which is the
    caller's (git's) job, and the record says exactly that.
    """

    type: DeployType = "ci_cd"

    def __init__(self, cfg: CiCdDeployConfig, shell: LocalShell, *, provider: str, http_timeout: float,
                 wait: Callable[[float], bool], rollback_command: str | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.cfg = cfg
        self.shell = shell
        self.provider = provider
        self.http_timeout = http_timeout
        self.wait = wait  # returns True when the daemon asks us to stop waiting
        self.rollback_command = rollback_command
        self.clock = clock

    def deploy(self, commit: str, steps: StepRecorder) -> str:
        if self.cfg.status_command:
            return self._poll(commit, steps, lambda: self._poll_command(commit, steps))
        if self.cfg.status_url:
            return self._poll(commit, steps, lambda: self._poll_url(commit))
        return (f"triggered (pushed): {self.provider} runs the pipeline for {commit}; no status_command or "
                "status_url configured, so its result is not checked")

    def _poll(self, commit: str, steps: StepRecorder, once: Callable[[], tuple[Outcome, StepRecord]]) -> str:
        deadline = self.clock() + self.cfg.poll_timeout
        polls = 0
        while True:
            outcome, step = once()
            polls += 1
            if outcome != "pending" or self.clock() + self.cfg.poll_interval > deadline:
                break
            if self.wait(self.cfg.poll_interval):
                steps.add(step)
                raise StepFailedError(f"stopped while waiting for the {self.provider} pipeline of {commit} "
                                      f"(after {polls} polls)")
        step = steps.add(step.model_copy(update={"command": f"{step.command} (poll {polls})"}))
        if outcome == "success":
            return f"{self.provider} pipeline for {commit} succeeded (after {polls} polls)"
        if outcome == "failure":
            raise StepFailedError(f"{self.provider} pipeline for {commit} failed: {step.output_tail.strip()[-300:]}")
        raise StepFailedError(f"{self.provider} pipeline for {commit} still pending after "
                              f"{self.cfg.poll_timeout:g}s ({polls} polls)")

    def _poll_command(self, commit: str, steps: StepRecorder) -> tuple[Outcome, StepRecord]:
        command = substitute(self.cfg.status_command or "", commit=commit)
        result = steps.attempt("poll", self.shell, command, record=False)
        outcome: Outcome = ("success" if result.ok else
                            "pending" if result.exit_code == PENDING_EXIT and not result.timed_out else "failure")
        return outcome, StepRecord(phase="poll", command=command, target=self.shell.target,
                                   exit_code=result.exit_code, output_tail=result.output,
                                   timed_out=result.timed_out, duration=round(result.duration, 3))

    def _poll_url(self, commit: str) -> tuple[Outcome, StepRecord]:
        url = (self.cfg.status_url or "").replace("{commit}", urllib.parse.quote(commit, safe=""))
        started = self.clock()
        outcome, note = self._fetch(url)
        return outcome, StepRecord(phase="poll", command=f"GET {url}", target="http", exit_code=None,
                                   output_tail=note, duration=round(self.clock() - started, 3))

    def _fetch(self, url: str) -> tuple[Outcome, str]:
        request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "ai-agents"})
        try:
            with urllib.request.urlopen(request, timeout=self.http_timeout) as response:
                body = response.read(65536).decode("utf-8", errors="replace")
                code = response.status
        except urllib.error.HTTPError as e:
            # Not found yet, throttled or a server hiccup: the pipeline may still report; keep polling.
            if e.code in (404, 408, 425, 429) or e.code >= 500:
                return "pending", f"HTTP {e.code} {e.reason} (will poll again)"
            return "failure", f"HTTP {e.code} {e.reason}"
        except (urllib.error.URLError, OSError) as e:
            # Unreachable now is not a verdict; the deadline turns it into one.
            return "pending", f"status URL unreachable: {getattr(e, 'reason', e)} (will poll again)"
        try:
            data = json.loads(body)
        except ValueError:
            return "success", f"HTTP {code} (body is not JSON: 2xx means success)"
        if not isinstance(data, dict) or "status" not in data:
            return "success", f"HTTP {code} (no 'status' field: 2xx means success)"
        word = str(data["status"]).strip().lower()
        if word not in _WORDS:
            return "failure", f"HTTP {code}, unrecognised status {word!r} (want success, failure or pending)"
        return _WORDS[word], f"HTTP {code}, status {word!r}: {body.strip()[:500]}"

    def rollback_unavailable(self) -> str | None:
        if self.rollback_command:
            return None
        return ("nothing was run: for ci_cd, rolling back means reverting the commit on the branch and pushing "
                "so the pipeline deploys the previous version; the caller's git step can do that (no ci_cd "
                "rollback command is configured)")

    def rollback(self, target: str, steps: StepRecorder) -> str:
        steps.run("rollback", self.shell, substitute(self.rollback_command or "", commit=target))
        return f"rollback command ran for {target}"

    def check(self) -> CheckResult:
        data: dict[str, object] = {"type": "ci_cd", "provider": self.provider}
        if self.cfg.status_command:
            program = self.cfg.status_command.split()[0]
            # `command -v` through the same shell and env also knows builtins and absolute paths.
            ok = self.shell.run(f"command -v {shlex.quote(program)}", timeout=10).ok
            return CheckResult("deployment", ok, f"status command {program} " + ("found" if ok else "not found"),
                               data)
        if self.cfg.status_url:
            parsed = urllib.parse.urlsplit(self.cfg.status_url)
            ok = parsed.scheme in ("http", "https") and bool(parsed.netloc)
            return CheckResult("deployment", ok, f"status URL on {parsed.netloc or '?'}"
                               + ("" if ok else " is not an http(s) URL"), data)
        return CheckResult("deployment", True, f"{self.provider}: a push triggers the pipeline; its result is not "
                           "checked (no status_command or status_url)", data)
