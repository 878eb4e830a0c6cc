"""The web dashboard: overview, tasks with their timeline and diff, cost charts, approvals.

Served by ``python main.py dashboard`` or by the daemon when ``dashboard.listen`` is set.
It reads the store and the workspace's git; the only thing it changes is an approval,
through the same function the CLI's ``approve``/``reject`` call.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

from ai_agents.dashboard.server import DashboardServer

__all__ = ["DashboardServer", "serve_dashboard"]


def serve_dashboard(config_path: Path, listen: str | None = None) -> int:
    """``dashboard``: serve in the foreground until SIGTERM/SIGINT; exit 0."""
    from ai_agents.config import load_config
    from ai_agents.logging_setup import Redactor, configure_logging

    settings = load_config(config_path)
    redactor = Redactor(settings.secret_values())
    # Log to stdout only: the daemon's log file belongs to the daemon (and its rotation).
    configure_logging(settings.logging.model_copy(update={"file": None}), redactor)
    server = DashboardServer(settings, listen, redactor=redactor)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()  # only a flag: the main thread stops the server

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.start()
    print(f"dashboard: {server.url}" + (" (token required)" if server.token else ""), flush=True)
    while not stop.wait(0.5):
        pass
    server.stop()
    return 0
