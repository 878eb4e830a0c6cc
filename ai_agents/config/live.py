"""Live steering: the current Settings behind one atomic reference, and a file watcher.

Parts that read live keys keep the :class:`LiveConfig` and read ``.current`` each
time they need a value; parts that must react (budget reset, log level) subscribe.
An edited config.yaml applies only its :data:`LIVE_KEYS`; a changed key that is not
live keeps its value in force and is listed in ``restart_required`` until a restart.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from pydantic import ValidationError

from ai_agents.config.loader import load_config
from ai_agents.config.models import LIVE_KEYS, Settings
from ai_agents.errors import ConfigError

log = structlog.get_logger("ai_agents.config")

Listener = Callable[[Settings, Settings, list[str]], None]


def changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted paths of every leaf that differs between two configs (secrets compared, not shown)."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys: list[str] = []
        for k in sorted(set(old) | set(new), key=str):
            keys += changed_keys(old.get(k), new.get(k), f"{prefix}{k}.")
        return keys
    return [] if old == new else [prefix.rstrip(".")]


def live_prefix(key: str) -> tuple[str, ...] | None:
    """The part of dotted ``key`` that a :data:`LIVE_KEYS` entry covers (``*`` is one level),
    or None when the key needs a restart. ``company.goals`` -> ("company",)."""
    parts = key.split(".")
    for pattern in LIVE_KEYS:
        want = pattern.split(".")
        if len(parts) >= len(want) and all(w in ("*", p) for w, p in zip(want, parts, strict=False)):
            return tuple(parts[: len(want)])
    return None


def _graft(target: dict[str, Any], source: dict[str, Any], path: tuple[str, ...]) -> None:
    """Copy ``source``'s value at ``path`` into ``target`` (removing it where ``source`` has none)."""
    *parents, last = path
    for name in parents:
        source = source.get(name) if isinstance(source, dict) else None  # type: ignore[assignment]
        target = target.setdefault(name, {})
    if isinstance(source, dict) and last in source:
        target[last] = source[last]
    else:
        target.pop(last, None)


def _dump(settings: Settings) -> dict[str, Any]:
    data = settings.model_dump(mode="python")
    # SecretStr compares by value only when revealed; reveal for diffing, never for printing.
    for section, key in (("llm", "api_key"), ("git", "token")):
        secret = getattr(getattr(settings, section), key)
        data[section][key] = secret.get_secret_value() if secret else None
    return data


class LiveConfig:
    """Holds the Settings in force. Reading ``.current`` is a single reference read."""

    def __init__(self, settings: Settings, path: Path | None = None):
        self._current = settings
        self.path = path
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._restart_required: list[str] = []

    @property
    def current(self) -> Settings:
        return self._current

    @property
    def restart_required(self) -> list[str]:
        """Keys whose edited value waits for a restart (empty after a restart)."""
        return list(self._restart_required)

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def reload(self, edited: Settings) -> tuple[list[str], list[str]]:
        """Apply the live keys of an edited config; return (applied keys, keys waiting for a restart).

        The settings in force keep their value for every key that is not live. The keys that
        wait are those where ``edited`` differs from what is in force afterwards, so reverting
        an edit clears them.
        """
        old = self._current
        old_data, edited_data = _dump(old), _dump(edited)
        merged = old_data
        for key in changed_keys(old_data, edited_data):
            prefix = live_prefix(key)
            if prefix is not None:
                _graft(merged, edited_data, prefix)
        try:
            applied = Settings.model_validate(merged)
        except ValidationError as e:  # live and restart keys that are only valid together: wait for both
            log.warning("config_live_merge_invalid", errors=[err["msg"] for err in e.errors()][:5])
            applied = old
        keys = self.replace(applied)
        self._restart_required = changed_keys(_dump(applied), edited_data)
        return keys, self.restart_required

    def replace(self, new: Settings) -> list[str]:
        """Swap in ``new`` whole (every key), tell every listener, return the changed keys."""
        with self._lock:
            old, self._current = self._current, new
        keys = changed_keys(_dump(old), _dump(new))
        if keys:
            for listener in list(self._listeners):
                try:
                    listener(old, new, keys)
                except Exception:
                    log.exception("config_listener_failed", listener=getattr(listener, "__qualname__", repr(listener)))
        return keys


class ConfigWatcher:
    """Polls config.yaml's stat; on change validates and swaps it in, or rejects it.

    Polling (not inotify) because it works the same on bind mounts, Docker volumes
    and editors that replace the file; call :meth:`check` every second or so.
    """

    def __init__(self, live: LiveConfig, path: Path):
        self.live = live
        self.path = path
        self._signature = self._stat()

    def _stat(self) -> tuple[float, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime, st.st_size, st.st_ino)

    def check(self) -> bool:
        """Return True when a new config was swapped in."""
        sig = self._stat()
        if sig == self._signature:
            return False
        self._signature = sig
        if sig is None:
            log.error("config_rejected", path=str(self.path), errors=["config file is missing or unreadable"],
                      detail="the previous config stays in force", alert=True, alert_name="config_rejected")
            return False
        try:
            new = load_config(self.path)
        except ConfigError as e:
            log.error("config_rejected", path=str(self.path), errors=e.problems,
                      detail="the previous config stays in force", alert=True, alert_name="config_rejected")
            return False
        keys, waiting = self.live.reload(new)
        log.info("config_reloaded", path=str(self.path), changed_keys=keys)
        if waiting:
            log.warning("config_restart_required", path=str(self.path), keys=waiting,
                        detail="these keys are read at start: their new values are not applied until a restart")
        return True
