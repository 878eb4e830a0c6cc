"""JSON logs: every line parses, context is bound, secrets never appear."""

from __future__ import annotations

import io
import json

import structlog

from ai_agents.config.models import LoggingConfig
from ai_agents.logging_setup import Redactor, RetentionRotatingFileHandler, configure_logging

SECRET = "sk-" + "test-fake-0123456789abcdefghij"


def _lines(buf: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buf.getvalue().splitlines() if line.strip()]


def test_json_lines_with_context_and_redaction(tmp_path):
    buf = io.StringIO()
    cfg = LoggingConfig(file=tmp_path / "logs" / "a.log")
    configure_logging(cfg, Redactor([SECRET, "hunter2-password"]), stream=buf)
    log = structlog.get_logger("test")
    with structlog.contextvars.bound_contextvars(task_id="t-1", agent="developer"):
        log.info("task_started", prompt=f"use key {SECRET}", headers={"authorization": "Bearer abcdefghijklmnop"})
        log.warning("odd", note="password=hunter2-password")
    try:
        raise ValueError(f"failed with {SECRET}")
    except ValueError:
        log.exception("crashed")
    import logging
    logging.getLogger("vendor").warning("stdlib line %s", SECRET)

    rows = _lines(buf)
    assert [r["event"] for r in rows] == ["task_started", "odd", "crashed", "stdlib line [REDACTED]"]
    first = rows[0]
    assert first["task_id"] == "t-1" and first["agent"] == "developer" and first["level"] == "info"
    assert first["logger"] == "test" and first["timestamp"].endswith("Z")
    assert rows[2]["exception"][0]["exc_type"] == "ValueError"
    text = buf.getvalue() + (tmp_path / "logs" / "a.log").read_text()
    assert SECRET not in text and "hunter2-password" not in text and "abcdefghijklmnop" not in text
    assert (tmp_path / "logs" / "a.log").read_text().count("\n") == 4


def test_console_format_is_readable(tmp_path):
    buf = io.StringIO()
    configure_logging(LoggingConfig(format="console", file=None), Redactor([SECRET]), stream=buf)
    structlog.get_logger("x").info("hello", key=SECRET)
    out = buf.getvalue()
    assert "hello" in out and SECRET not in out and not out.startswith("{")


def test_rotation_and_retention(tmp_path):
    import os
    import time

    target = tmp_path / "r.log"
    old = tmp_path / "r.log.5"
    old.write_text("old")
    os.utime(old, (time.time() - 10 * 86400,) * 2)
    handler = RetentionRotatingFileHandler(target, max_bytes=200, backup_count=3, retention_days=7)
    assert not old.exists()  # older than 7 days: deleted
    import logging
    rec = logging.LogRecord("x", logging.INFO, __file__, 1, "y" * 150, None, None)
    for _ in range(6):
        handler.emit(rec)
    handler.close()
    rotated = sorted(p.name for p in tmp_path.glob("r.log.*"))
    assert rotated == ["r.log.1", "r.log.2", "r.log.3"]
