"""Every way a provider call can fail, through the real SDKs against the fake server, ends as a
classified error (one the orchestrator has an action for) or as a result: never a bare vendor,
``json``, ``httpx`` or ``UnicodeDecodeError`` exception (which the daemon would log as a crash).

The matrix is exhaustive: every SDK (openai, anthropic, openai_compatible) times every fault kind
(HTTP statuses, a 5xx with an HTML body, connection reset and drop, timeout, cut-off / malformed /
empty / short / non-UTF-8 bodies, a response of the wrong shape, an HTML 200, empty answers, and
answers whose content is not the requested JSON). Streaming is not used by the daemon, so there is
no stream to truncate. For each cell:

* the fault once: a transient fault is retried and the same provider answers;
* the fault every time, one provider: the error is of the expected class, transient faults were
  retried (``max_retries + 1`` attempts), permanent ones were not;
* the fault every time, with a healthy fallback: the fallback answers (provider faults), or the
  primary's unusable content ends as ``LLMOutputError`` after the repair round (content faults).

Then a seeded property test: random damage to a good answer (cut at any byte, flipped bytes,
fields of another type, any status with any body) ends as an answer or a classified error.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from ai_agents.config.live import LiveConfig
from ai_agents.errors import (
    AgentsError,
    ErrorAction,
    LLMAuthError,
    LLMOutputError,
    LLMRequestError,
    LLMUnavailableError,
    action_for,
)
from ai_agents.llm import LLMClient, RetryPolicy
from ai_agents.llm.base import ProviderReply, ProviderRequest
from ai_agents.llm.failures import ProviderTransientError, check_reply, classify
from tests.fakes.llm_handler import WIRE_FAULT_KINDS
from tests.fakes.llm_server import FakeLLMServer

SDKS = ("openai", "anthropic", "openai_compatible")
STATUSES = (400, 401, 403, 404, 408, 409, 429, 500, 502, 503, 504, 529)
PERMANENT = {400: LLMRequestError, 401: LLMAuthError, 403: LLMAuthError, 404: LLMRequestError}
TRANSIENT_KINDS = (*WIRE_FAULT_KINDS, "drop", "timeout", "empty", "502_html")
CONTENT_KINDS = ("invalid_json", "schema_violation")  # a well-formed answer whose content is wrong
FAULTS: tuple[int | str, ...] = (*STATUSES, *TRANSIENT_KINDS, *CONTENT_KINDS)
HTML = b"<html><body><h1>502 Bad Gateway</h1></body></html>"


class Estimate(BaseModel):
    hours: int
    risk: str


def inject(server: FakeLLMServer, fault: int | str, n: int) -> None:
    if isinstance(fault, int):
        server.fail_next(n, status=fault, headers={})
    elif fault == "502_html":
        server.fail_next(n, status=502, headers={}, body=HTML)
    else:
        server.fault_next(fault, n)


def transient(fault: int | str) -> bool:
    return fault not in PERMANENT and fault not in CONTENT_KINDS


def causes(exc: BaseException) -> list[type[BaseException]]:
    seen: list[type[BaseException]] = []
    cur: BaseException | None = exc
    while cur is not None and len(seen) < 10:
        seen.append(type(cur))
        cur = cur.__cause__ or cur.__context__
    return seen


def call(client: LLMClient, structured: bool) -> Any:
    if structured:
        return client.generate_structured("Estimate the work", Estimate)
    return client.generate("Say something")


def assert_classified(exc: BaseException, fault: int | str, *, structured: bool) -> None:
    """The error is one of ours with a defined action, and of the class this fault deserves."""
    assert isinstance(exc, AgentsError), f"{fault}: unclassified {type(exc).__name__}: {exc}"
    if fault in PERMANENT:
        assert isinstance(exc, PERMANENT[fault]), f"{fault}: {type(exc).__name__}: {exc}"
    elif fault in CONTENT_KINDS:
        assert structured and isinstance(exc, LLMOutputError), f"{fault}: {type(exc).__name__}: {exc}"
    else:
        assert isinstance(exc, LLMUnavailableError), f"{fault}: {type(exc).__name__}: {exc}"
        assert action_for(exc) == ErrorAction.RETRY


@pytest.mark.parametrize("fault", FAULTS, ids=str)
@pytest.mark.parametrize("sdk", SDKS)
def test_every_fault_ends_classified_or_answered(sdk, fault, server, make_client, entry, settings_for, llm_rows):
    timeout = 0.5 if fault == "timeout" else 10.0
    primary = entry(sdk, server, timeout=timeout, **({"structured_mode": "json_schema"}
                                                     if sdk == "openai_compatible" else {}))
    no_cache = {"cache": {"enabled": False}}  # every call goes to the server
    alone = make_client(settings_for({**primary, "max_retries": 1, **no_cache}))

    # Once: a transient fault is retried and the same provider then answers.
    if transient(fault):
        inject(server, fault, 1)
        server.clear_requests()
        answer = alone.generate("Say something")
        assert (answer.provider, answer.text) == (sdk, "ok")
        assert len(server.requests) == 2

    # Every time, one provider: a classified error; retried only when the fault is transient.
    inject(server, fault, 50)
    shapes = (False,) if fault == "timeout" else (False, True)  # a timeout does not care what was asked
    for structured in shapes:
        server.clear_requests()
        try:
            result = call(alone, structured)
        except Exception as exc:
            assert_classified(exc, fault, structured=structured)
            if fault == "cut_json":  # the case: the SDK's bare JSONDecodeError, kept as the cause
                assert json.JSONDecodeError in causes(exc)
            if not structured:
                assert len(server.requests) == (2 if transient(fault) else 1)
        else:
            # Only an answer whose content is wrong may come back as a result: as text.
            assert fault in CONTENT_KINDS and not structured, f"{fault}: unexpected result {result!r}"
    errors = [r["error"] for r in llm_rows() if r["error"]]
    assert bool(errors) == (fault not in CONTENT_KINDS)  # content faults are answers: no failed attempt
    assert all(e.split(":")[0] in {"ProviderTransientError", "LLMAuthError", "LLMRequestError",
                                   "RequestShapeRejectedError"} for e in errors), errors

    # Every time, with a healthy fallback: provider faults are answered by the fallback.
    with FakeLLMServer() as backup:
        chain = make_client(settings_for({**primary, "max_retries": 1, **no_cache,
                                           "fallback": [entry("anthropic", backup)]}))
        for structured in shapes:
            try:
                result = call(chain, structured)
            except Exception as exc:
                assert fault in CONTENT_KINDS and structured, f"{fault}: {type(exc).__name__}: {exc}"
                assert isinstance(exc, LLMOutputError)
            else:
                if structured:
                    assert result == Estimate(hours=0, risk="ok")
                else:
                    expected_provider = sdk if fault in CONTENT_KINDS else "anthropic"
                    assert result.provider == expected_provider
        if fault not in CONTENT_KINDS:
            assert len(backup.requests) == len(shapes)


# --- the mapping itself, for what the fake server cannot make an SDK raise ------------
def test_classify_maps_every_exception_family():
    def made(exc: Exception) -> AgentsError:
        return classify(exc, label="openai:m")

    try:
        Estimate.model_validate({"hours": "many"})
    except ValidationError as e:
        pydantic_error = e
    cases: dict[str, Exception] = {
        "json": json.JSONDecodeError("Unterminated string", '{"a": "', 6),
        "utf8": UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
        "pydantic": pydantic_error,
        "shape": AttributeError("'str' object has no attribute 'message'"),
        "index": IndexError("list index out of range"),
        "reset": ConnectionResetError(104, "Connection reset by peer"),
    }
    for name, exc in cases.items():
        out = made(exc)
        assert isinstance(out, ProviderTransientError), name
        assert out.kind == ("connection" if name == "reset" else "bad_response"), name
    wrapped = RuntimeError("the SDK wrapped it")
    wrapped.__cause__ = ConnectionResetError(104, "reset")
    assert made(wrapped).kind == "connection"  # type: ignore[attr-defined]
    odd = made(RuntimeError("something no one expected"))
    assert type(odd) is LLMRequestError and "RuntimeError" in str(odd)
    already = LLMAuthError("401")
    assert made(already) is already


def test_check_reply_refuses_empty_and_mistyped_replies():
    check_reply(ProviderReply(text="fine", tokens_in=1, tokens_out=1, model="m"), label="p")
    with pytest.raises(ProviderTransientError) as info:
        check_reply(ProviderReply(text="  \n", tokens_in=1, tokens_out=0, model="m"), label="p")
    assert info.value.kind == "empty_answer"
    with pytest.raises(ProviderTransientError) as info:
        check_reply(ProviderReply(text="x", tokens_in=1, tokens_out=1, model=12), label="p")  # type: ignore[arg-type]
    assert info.value.kind == "bad_response"


class BrokenProvider:
    """A provider (not an SDK) whose call raises something no adapter mapped."""

    kind = "openai_compatible"

    def __init__(self, config: Any, exc: Exception):
        self.config = config
        self.config_path = "llm"
        self.exc = exc
        self.calls = 0

    @property
    def label(self) -> str:
        return "broken:m"

    def missing_key(self) -> str | None:
        return None

    def complete(self, request: ProviderRequest) -> ProviderReply:
        self.calls += 1
        raise self.exc

    def close(self) -> None:
        """Nothing to release."""


@pytest.mark.parametrize("exc, attempts", [(RuntimeError("sdk bug"), 1), (KeyError("choices"), 2)])
def test_an_unexpected_exception_falls_back_instead_of_crashing(exc, attempts, server, memory, sleeps, entry,
                                                                settings_for):
    from ai_agents.llm.providers import build_provider

    settings = settings_for({**entry("openai", server), "max_retries": 1})
    broken = BrokenProvider(settings.llm, exc)
    client = LLMClient(LiveConfig(settings), memory, [broken, build_provider(settings.llm)],
                       retry=RetryPolicy(base=0.01, sleep=sleeps, jitter=lambda a, b: 0.0))
    try:
        answer = client.generate("hi")
    finally:
        client.close()
    assert (answer.provider, answer.text) == ("openai", "ok")
    assert broken.calls == attempts  # a shape error is retried; an unknown one goes straight to the next


# --- property: random damage to a good answer ------------------------------------------
def damaged_bodies(api: str, seed: int, n: int) -> list[tuple[int, bytes]]:
    """``n`` (status, body) pairs: a good answer cut, bit-flipped, re-typed or under a random status."""
    from tests.fakes import llm_wire as wire

    rng = random.Random(seed)
    req = wire.WireRequest(api, "m", ["hi"])
    good = (wire.anthropic_answer(req, "fine", usage=True) if api == "anthropic"
            else wire.openai_answer(req, "fine", usage=True))
    raw = json.dumps(good).encode()
    out: list[tuple[int, bytes]] = []
    for _ in range(n):
        how = rng.choice(("cut", "flip", "retype", "status"))
        body, status = raw, 200
        if how == "cut":
            body = raw[: rng.randrange(len(raw))]
        elif how == "flip":
            data = bytearray(raw)
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            body = bytes(data)
        elif how == "retype":
            key = rng.choice(sorted(good))
            body = json.dumps({**good, key: rng.choice([None, 7, "x", [], {}, [1, 2], {"a": None}])}).encode()
        else:
            status = rng.choice(STATUSES)
            body = rng.choice([raw, b"", b"<html>oops</html>", raw[: len(raw) // 3]])
        out.append((status, body))
    return out


@pytest.mark.parametrize("sdk", SDKS)
def test_random_damage_ends_classified_or_answered(sdk, server, make_client, entry, settings_for):
    client = make_client(settings_for({**entry(sdk, server), "max_retries": 0, "cache": {"enabled": False}}))
    api = "anthropic" if sdk == "anthropic" else "openai"
    outcomes: dict[str, int] = {}
    for status, body in damaged_bodies(api, seed=12, n=40):
        server.fail_next(1, status=status, headers={}, body=body)
        try:
            answer = client.generate("hi")
        except Exception as exc:  # whatever it is, it must be one of ours with a defined action
            assert isinstance(exc, AgentsError), f"{status} {body[:80]!r}: {type(exc).__name__}: {exc}"
            action_for(exc)
            outcomes[type(exc).__name__] = outcomes.get(type(exc).__name__, 0) + 1
        else:
            assert status == 200 and isinstance(answer.text, str) and answer.text.strip()
            outcomes["answer"] = outcomes.get("answer", 0) + 1
    assert len(outcomes) >= 3, outcomes  # the damage really varied: answers and several error classes
