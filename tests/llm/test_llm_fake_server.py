"""The fake server itself, which other test suites rely on: auth, defaults, failures, recording."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import datetime
from enum import StrEnum

import pytest
from pydantic import BaseModel, Field

from tests.fakes.llm_wire import minimal_value, violating_value


def post(url: str, body: dict, headers: dict[str, str]) -> tuple[int, dict]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"content-type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


MESSAGES = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


def test_require_key_accepts_x_api_key_and_bearer(server):
    server.require_key = "k-123456"
    url = server.base_url + "/v1/messages"
    assert post(url, MESSAGES, {"x-api-key": "k-123456"})[0] == 200
    assert post(url, MESSAGES, {"authorization": "Bearer k-123456"})[0] == 200
    status, body = post(url, MESSAGES, {"x-api-key": "wrong"})
    assert status == 401 and body["error"]["type"] == "authentication_error"
    assert [r.headers.get("x-api-key") for r in server.requests] == ["k-123456", None, "wrong"]


def test_fail_next_with_custom_status_headers_and_body(server):
    server.fail_next(1, status=503, headers={"x-custom": "1"}, body={"error": {"message": "custom"}})
    status, body = post(server.openai_base_url + "/chat/completions", MESSAGES, {})
    assert (status, body) == (503, {"error": {"message": "custom"}})
    assert post(server.openai_base_url + "/chat/completions", MESSAGES, {})[0] == 200


def test_unknown_route_is_404(server):
    assert post(server.base_url + "/v2/other", MESSAGES, {})[0] == 404


class Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


class Item(BaseModel):
    name: str = Field(min_length=3)
    count: int = Field(ge=1)


class Order(BaseModel):
    items: list[Item] = Field(min_length=1)
    colour: Colour
    when: datetime
    note: str | None
    ratio: float = Field(gt=0.5)
    optional: int = 4


def test_minimal_value_validates_against_nested_schemas():
    value = minimal_value(Order.model_json_schema())
    order = Order.model_validate(value)
    assert order.colour == Colour.RED and order.items[0].count == 1 and order.optional == 4
    assert "optional" not in value  # required fields only


def test_violating_value_does_not_validate():
    with pytest.raises(ValueError):
        Order.model_validate(violating_value(Order.model_json_schema()))


def test_default_structured_answer_for_both_apis(server, make_client, entry, settings_for):
    for kind in ("openai", "anthropic"):
        order = make_client(settings_for(entry(kind, server))).generate_structured("order", Order)
        assert isinstance(order, Order)


def test_cache_ttl_zero_stores_nothing(server, make_client, entry, settings_for):
    client = make_client(settings_for({**entry("openai", server), "cache": {"enabled": True, "ttl_seconds": 0}}))
    client.generate("q")
    assert not client.generate("q").cached
    assert len(server.requests) == 2
