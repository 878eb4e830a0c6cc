"""The response cache: SQLite rows (``MemoryStore.cache_get/put``) keyed on the whole request."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ai_agents.memory.store import MemoryStore


def cache_key(*, provider: str, base_url: str | None, model: str, messages: list[dict[str, str]],
              system: str | None, temperature: float, max_tokens: int, schema: dict[str, Any] | None) -> str:
    """sha256 over everything that changes the answer. ``base_url`` is in it so two servers
    of the same kind never share answers."""
    material = json.dumps(
        {"provider": provider, "base_url": base_url, "model": model, "messages": messages, "system": system,
         "temperature": temperature, "max_tokens": max_tokens, "schema": schema},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "llm:" + hashlib.sha256(material.encode("utf-8")).hexdigest()


class ResponseCache:
    """A thin typed face over the store; the TTL and on/off switch come from the caller's live config."""

    def __init__(self, memory: MemoryStore):
        self.memory = memory

    def get(self, key: str) -> dict[str, Any] | None:
        entry = self.memory.cache_get(key)
        return entry if isinstance(entry, dict) and isinstance(entry.get("text"), str) else None

    def put(self, key: str, *, text: str, provider: str, model: str, ttl_seconds: float) -> None:
        if ttl_seconds > 0:
            self.memory.cache_put(key, {"text": text, "provider": provider, "model": model}, ttl_seconds)
