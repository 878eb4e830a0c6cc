"""Escaping for every page: all text is redacted, then HTML-escaped, unless it is already :class:`Markup`.

Model text is hostile (a task title or an error may hold ``<script>``), so pages are
built only from :class:`Markup` produced here: ``render(template, **values)`` escapes
each value that is not Markup itself, and ``Escaper`` removes secrets first, with the
same :class:`~ai_agents.logging_setup.Redactor` the logs use.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from typing import Any

from ai_agents.logging_setup import Redactor


class Markup(str):
    """Text that is already safe HTML (built by :func:`render` or :meth:`Escaper.text`)."""

    __slots__ = ()


class Escaper:
    """Redact, then escape: the only way a value reaches a page."""

    def __init__(self, redactor: Redactor):
        self.redactor = redactor

    def text(self, value: Any, limit: int | None = None) -> Markup:
        if isinstance(value, Markup):
            return value
        if value is None:
            return Markup("")
        if not isinstance(value, str):
            value = json.dumps(self.redactor.redact_value(value), default=str, ensure_ascii=False) \
                if isinstance(value, (dict, list, tuple)) else str(value)
        text = self.redactor.redact(value)
        if limit is not None and len(text) > limit:
            text = text[:limit] + "…"
        return Markup(html.escape(text, quote=True))

    def render(self, template: str, **values: Any) -> Markup:
        """``template`` is trusted markup with ``{name}`` holes; each value is escaped unless Markup."""
        return Markup(template.format(**{k: self.text(v) for k, v in values.items()}))

    def join(self, parts: Iterable[Markup], sep: str = "") -> Markup:
        return Markup(sep.join(p if isinstance(p, Markup) else self.text(p) for p in parts))

    def details(self, details: dict[str, Any], limit: int = 400) -> Markup:
        """A record's details as 'key: value' items, each value cut and escaped."""
        clean = self.redactor.redact_value(details)
        items = []
        for k, v in clean.items():
            shown = v if isinstance(v, str) else json.dumps(v, default=str, ensure_ascii=False)
            items.append(self.render('<span class="kv"><b>{k}</b> {v}</span>', k=str(k), v=self.text(shown, limit)))
        return self.join(items, " ")
