"""No API key ever reaches a log line: real JSON log output through the daemon's logging setup."""

from __future__ import annotations

import io
import json

import pytest

from ai_agents.config.models import LoggingConfig
from ai_agents.errors import AgentsError
from ai_agents.logging_setup import REDACTED, Redactor, configure_logging


def _exercise(server, make_client, entry, settings_for):
    """Successes, retries, a 401, a fallback and an output error: every log path the client has."""
    server.require_key = "the-only-accepted-key-value"
    settings = settings_for({**entry("openai", server), "fallback": [entry("anthropic", server)]})
    with pytest.raises(AgentsError):
        make_client(settings).generate("hello")
    server.require_key = None
    client = make_client(settings)
    server.fail_next(3, status=500)
    client.generate("fall back please", agent="developer")
    client.generate("fall back please", agent="developer")  # cache hit
    server.enqueue("nope")
    server.enqueue("still nope")
    with pytest.raises(AgentsError):
        from pydantic import BaseModel

        class Answer(BaseModel):
            value: int

        client.generate_structured("answer", Answer)
    return settings


def _lines(buf: io.StringIO) -> list[dict]:
    lines = [line for line in buf.getvalue().splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # every line must be JSON


@pytest.mark.usefixtures("restore_logging")
def test_no_key_in_any_log_line_with_the_daemon_redactor(server, make_client, entry, settings_for):
    buf = io.StringIO()
    configure_logging(LoggingConfig(file=None), Redactor(settings_for(entry("openai", server)).secret_values()),
                      stream=buf)
    _exercise(server, make_client, entry, settings_for)
    records = _lines(buf)
    events = {r["event"] for r in records}
    assert {"llm_call", "llm_attempt_failed", "llm_retry", "llm_fallback", "llm_output_invalid"} <= events
    text = buf.getvalue()
    assert "sk-test-fake-0000" not in text
    assert REDACTED not in text  # nothing even tried to log the key


@pytest.mark.usefixtures("restore_logging")
def test_no_key_in_logs_even_without_redaction(server, make_client, entry, settings_for):
    # A key shaped unlike any credential pattern, and a redactor that knows no secrets:
    # only the client's own discipline keeps it out of the logs.
    buf = io.StringIO()
    configure_logging(LoggingConfig(file=None), Redactor(), stream=buf)
    plain_key = "plainkeyvalue1234567890"

    def plain_entry(kind, srv, **extra):
        return entry(kind, srv, api_key=plain_key, **extra)

    _exercise(server, make_client, plain_entry, settings_for)
    assert len(_lines(buf)) > 5
    assert plain_key not in buf.getvalue()
    assert all(plain_key in (r.headers.get("authorization", "") + r.headers.get("x-api-key", ""))
               for r in server.requests)  # the key was really in use
