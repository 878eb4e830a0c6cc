"""Vendor failures translated into the daemon's error groups, with a sentence saying what to fix.

Both SDKs raise the same shapes (a status error with a response, a timeout, a
connection error), so the translation lives here once; each provider module only
says which of its exception classes is which. Whatever else a call raises (a bare
``json.JSONDecodeError`` for a cut-off 200 body, a ``UnicodeDecodeError``, an
``httpx`` error, a response of the wrong shape, any unexpected SDK exception) and an
answer with nothing in it are classified by :func:`classify` and :func:`check_reply`,
which the provider chain applies to every call: no provider failure is ever a crash.
"""

from __future__ import annotations

import email.utils
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ai_agents.errors import AgentsError, LLMAuthError, LLMRequestError, LLMUnavailableError

if TYPE_CHECKING:
    from ai_agents.llm.base import ProviderReply

# Statuses worth retrying: rate limit, request timeout, server errors, Anthropic's "overloaded".
RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


class ProviderTransientError(LLMUnavailableError):
    """One provider failed in a way that may pass (429, 5xx, timeout, dropped connection,
    an unreadable or empty answer).

    ``kind`` is one of rate_limited, overloaded, server_error, timeout, connection,
    bad_response, empty_answer;
    ``retry_after`` is the server's requested wait in seconds, when it sent one.
    """

    def __init__(self, message: str, *, kind: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after = retry_after


class RequestShapeRejectedError(LLMRequestError):
    """A server refused one optional part of a request (a structured-output format, a
    sampling parameter) with 400; the provider leaves it out from now on, so the same
    request should be sent again at once (it does not use up a retry)."""


def parse_retry_after(headers: Mapping[str, str] | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass  # malformed: fall through to retry-after
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass  # not seconds: try an HTTP date
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def status_error(status: int, *, vendor: str, key_hint: str, model: str, config_path: str,
                 api_message: str | None = None, headers: Mapping[str, str] | None = None) -> AgentsError:
    """Map an HTTP error status to the error the caller acts on, with what to fix."""
    said = f": {api_message[:200]}" if api_message else ""
    if status == 401:
        return LLMAuthError(f"{vendor} rejected the API key (401): {key_hint}")
    if status == 403:
        return LLMAuthError(f"{vendor} refused access (403) to model '{model}': check the key's "
                            f"permissions or {config_path}.model{said}")
    if status == 404:
        return LLMRequestError(f"{vendor} does not know model '{model}' or the endpoint (404): "
                               f"fix {config_path}.model or {config_path}.base_url{said}")
    if status in RETRYABLE_STATUS:
        kind = {429: "rate_limited", 529: "overloaded"}.get(status, "server_error")
        what = {408: "request timeout", 409: "conflict"}.get(status, kind.replace("_", " "))
        return ProviderTransientError(f"{vendor} answered {status} ({what}){said}",
                                      kind=kind, status=status, retry_after=parse_retry_after(headers))
    if status >= 500:
        return ProviderTransientError(f"{vendor} answered {status} (server error){said}",
                                      kind="server_error", status=status, retry_after=parse_retry_after(headers))
    return LLMRequestError(f"{vendor} rejected the request ({status}){said}")


def _causes(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


def connection_error(exc: BaseException, *, vendor: str, base_url: str, timeout: float,
                     timed_out: bool) -> ProviderTransientError:
    """A timeout or a connection that failed: say which, and where."""
    if timed_out:
        return ProviderTransientError(f"{vendor} did not answer within {timeout:g}s (timeout) at {base_url}",
                                      kind="timeout")
    if any(isinstance(c, ConnectionRefusedError) or "refused" in str(c).lower() for c in _causes(exc)):
        return ProviderTransientError(f"cannot connect to {vendor} at {base_url} (connection refused): "
                                      "check base_url and that the server is running", kind="connection")
    return ProviderTransientError(f"connection to {vendor} at {base_url} failed or was dropped "
                                  f"({type(exc).__name__})", kind="connection")


def api_message_of(body: object) -> str | None:
    """The human message inside an OpenAI- or Anthropic-shaped error body, if any."""
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return err["message"]
        if isinstance(body.get("message"), str):
            return body["message"]
    return None


# The SDKs' HTTP stacks (httpx, or its fork httpx2 that newer SDKs ship) and their cores:
# an exception from one of these modules is a transport failure, whichever one is installed.
_TRANSPORT_MODULES = frozenset({"httpx", "httpx2", "httpcore", "httpcore2", "h11", "anyio", "ssl"})


def _is_transport(exc: BaseException) -> bool:
    if isinstance(exc, (OSError, EOFError)):
        return True
    return any(cls.__module__.split(".")[0] in _TRANSPORT_MODULES for cls in type(exc).__mro__[:-2])


def classify(exc: Exception, *, label: str) -> AgentsError:
    """The daemon's error for anything a provider call raised; ``label`` names the provider.

    Already classified errors pass through. A transport failure is a dropped connection, a
    body that cannot be decoded or parsed (``ValueError``: JSON, UTF-8, the SDK's pydantic
    validation) or read (the wrong shape: ``TypeError``, ``AttributeError``, ``KeyError``,
    ``IndexError``) is a bad response: both transient, so retried and then the fallback.
    Anything else is a failure of this provider alone: the chain moves to the next one.
    """
    if isinstance(exc, AgentsError):
        return exc
    what = f"{type(exc).__name__}: {str(exc)[:200]}"
    if any(_is_transport(c) for c in _causes(exc)):
        return ProviderTransientError(f"connection to {label} failed or was dropped ({what})", kind="connection")
    if isinstance(exc, ValueError):
        return ProviderTransientError(f"{label} sent an answer that cannot be decoded ({what})", kind="bad_response")
    if isinstance(exc, (TypeError, AttributeError, KeyError, IndexError)):
        return ProviderTransientError(f"{label} sent an answer of the wrong shape ({what})", kind="bad_response")
    return LLMRequestError(f"{label} failed unexpectedly ({what})")


def check_reply(reply: ProviderReply, *, label: str) -> None:
    """Raise a transient error for a reply that carries nothing usable or has the wrong types."""
    typed = (isinstance(reply.text, str) and isinstance(reply.model, str)
             and isinstance(reply.tokens_in, int) and isinstance(reply.tokens_out, int))
    if not typed:
        raise ProviderTransientError(f"{label} sent an answer of the wrong shape (text, model or usage of "
                                     "the wrong type)", kind="bad_response")
    # A reply that calls tools may come without text (native tool calling adds ``tool_calls``).
    if not reply.text.strip() and not getattr(reply, "tool_calls", None):
        raise ProviderTransientError(f"{label} answered with no content (an empty answer, or a body "
                                     "that was not an answer at all)", kind="empty_answer")
