"""What the orchestrator needs from the outside, as protocols (the ops package provides them)."""

from __future__ import annotations

from typing import Any, Protocol


class Alerts(Protocol):
    def alert(self, name: str, message: str, **fields: Any) -> bool: ...


class Notifier(Protocol):
    def ready(self, status: str = "") -> object: ...

    def status(self, text: str) -> object: ...

    def watchdog(self) -> object: ...

    def stopping(self) -> object: ...
