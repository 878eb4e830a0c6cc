"""Structured logs: one JSON object per line to stdout and a rotating file, secrets redacted.

structlog's configuration is process-wide by nature; only the CLI wiring calls
:func:`configure_logging`, once, and re-calls :meth:`Redactor.update` when the
config (and so the set of secrets) changes.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import structlog

from ai_agents.config.models import LoggingConfig

# Shapes of credentials that must never reach a log line, whatever their source.
SECRET_PATTERNS = [
    re.compile(r"(?<![A-Za-z0-9])sk-ant-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"(?<![A-Za-z0-9])sk-(?:proj-)?[A-Za-z0-9_\-]{16,}"),
    re.compile(r"gh[pousr]_[A-Za-z0-9]{20,}"),
    re.compile(r"github_pat_[A-Za-z0-9_]{20,}"),
    re.compile(r"AKIA[0-9A-Z]{16}"),
    re.compile(r"xox[abpr]-[A-Za-z0-9\-]{10,}"),
    re.compile(r"(?i)bearer\s+[A-Za-z0-9._\-]{12,}"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"),
    re.compile(r"(?i)(api[_-]?key|token|password|secret)(['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]{8,}"),
]
REDACTED = "[REDACTED]"
# Keys whose values are secrets whatever they look like.
_SECRET_KEY = re.compile(r"(?i)^(api_?key|.*_api_key|token|.*_token|password|secret|authorization|x-api-key)$")


class Redactor:
    """Removes configured secret values and credential-shaped strings from any text."""

    def __init__(self, secrets: Iterable[str] = ()):
        self._secrets: tuple[str, ...] = ()
        self.update(secrets)

    def update(self, secrets: Iterable[str]) -> None:
        # Longest first so a secret containing another is removed whole. Short values
        # would redact ordinary words, so anything under 6 characters is ignored.
        self._secrets = tuple(sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True))

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        for pattern in SECRET_PATTERNS:
            if pattern.groups >= 2:
                text = pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
            else:
                text = pattern.sub(REDACTED, text)
        return text

    def redact_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {k: REDACTED if _SECRET_KEY.search(str(k)) and v else self.redact_value(v)
                    for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.redact_value(v) for v in value]
        return value

    def __call__(self, logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        """structlog processor."""
        return self.redact_value(event_dict)


class RetentionRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Size rotation (100 MB, 7 files by default) that also deletes rotated files older than N days."""

    def __init__(self, filename: Path, max_bytes: int, backup_count: int, retention_days: float):
        filename.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(filename, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8")
        self.retention_seconds = retention_days * 86400
        self.prune()

    def doRollover(self) -> None:  # noqa: N802 - stdlib name
        super().doRollover()
        self.prune()

    def prune(self) -> None:
        base = Path(self.baseFilename)
        cutoff = time.time() - self.retention_seconds
        for old in base.parent.glob(base.name + ".*"):
            try:
                if old.stat().st_mtime < cutoff:
                    old.unlink()
            except OSError:
                continue  # another process rotated it away first


_configure_lock = threading.Lock()


def configure_logging(cfg: LoggingConfig, redactor: Redactor, *, stream: Any = None) -> None:
    """Send structlog and stdlib logging through one redacting JSON (or console) renderer."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        structlog.processors.StackInfoRenderer(),
    ]
    if cfg.format == "json":
        # No frame locals in tracebacks: they can hold keys and prompts.
        tracebacks = structlog.processors.ExceptionRenderer(
            structlog.tracebacks.ExceptionDictTransformer(show_locals=False))
        final: list[Any] = [tracebacks, redactor, structlog.processors.JSONRenderer()]
    else:
        final = [structlog.processors.format_exc_info, redactor, structlog.dev.ConsoleRenderer(colors=False)]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
    )
    handlers: list[logging.Handler] = [logging.StreamHandler(stream or sys.stdout)]
    if cfg.file is not None:
        handlers.append(RetentionRotatingFileHandler(cfg.file, cfg.max_bytes, cfg.backup_count, cfg.retention_days))
    with _configure_lock:
        root = logging.getLogger()
        for h in list(root.handlers):
            root.removeHandler(h)
            h.close()
        for h in handlers:
            h.setFormatter(formatter)
            root.addHandler(h)
        root.setLevel(cfg.level)
        # Vendor libraries log request details at DEBUG; keep them at WARNING.
        for noisy in ("httpx", "httpx2", "openai", "anthropic", "git", "apscheduler", "urllib3", "httpcore"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        structlog.configure(
            processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
            cache_logger_on_first_use=False,
        )


def set_level(level: str) -> None:
    logging.getLogger().setLevel(level)
