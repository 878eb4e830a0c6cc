"""Run the real daemon (`python main.py run`) in a subprocess and read its JSON log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.conftest import REPO, wait_for


class Daemon:
    def __init__(self, config: Path, env: dict[str, str] | None = None):
        self.config = config
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[str] | None = None
        self.stdout_path = config.parent / f"daemon-{time.monotonic_ns()}.out"

    def start(self) -> Daemon:
        self._out = open(self.stdout_path, "w")  # noqa: SIM115 - closed in wait()
        self.proc = subprocess.Popen([sys.executable, str(REPO / "main.py"), "run", "--config", str(self.config)],
                                     cwd=REPO, stdout=self._out, stderr=subprocess.STDOUT, text=True, env=self.env)
        return self

    def events(self) -> list[dict[str, Any]]:
        rows = []
        for line in self.stdout_path.read_text().splitlines():
            line = line.strip()
            if line:
                rows.append(json.loads(line))  # every line must be JSON
        return rows

    def wait_event(self, name: str, timeout: float = 20, **match: Any) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            return next((e for e in self.events() if e.get("event") == name
                         and all(e.get(k) == v for k, v in match.items())), None)
        return wait_for(found, timeout=timeout, message=f"log event {name} {match or ''}")

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.wait(10)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        finally:
            self._out.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
            self._out.close()


def cli(config: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO / "main.py"), *args, "--config", str(config)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)
