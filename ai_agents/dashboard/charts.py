"""Inline SVG charts drawn from the data: bars per day, horizontal bars per agent, a histogram.

No chart library and no external service: each function returns one ``<svg>``
element (Markup) whose labels go through the page's :class:`Escaper`.
"""

from __future__ import annotations

from collections.abc import Sequence

from ai_agents.dashboard.html import Escaper, Markup

W, H, PAD_L, PAD_B, PAD_T = 640, 210, 56, 44, 14
DURATION_BUCKETS: tuple[tuple[float, str], ...] = (
    (60, "<1 min"), (300, "1-5 min"), (900, "5-15 min"), (1800, "15-30 min"), (3600, "30-60 min"),
    (4 * 3600, "1-4 h"), (24 * 3600, "4-24 h"), (float("inf"), ">1 d"))


def _fmt(value: float, money: bool) -> str:
    if money:
        return f"${value:.2f}" if value >= 0.01 or value == 0 else f"${value:.4f}"
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 1_000:
        return f"{value / 1_000:.1f}k"
    return f"{value:.0f}"


def bars(e: Escaper, labels: Sequence[str], series: Sequence[tuple[str, Sequence[float], str]], *,
         title: str, money: bool = False) -> Markup:
    """Vertical (stacked when several series) bars, one group per label. series: (name, values, css class)."""
    n = max(1, len(labels))
    totals = [sum(s[1][i] for s in series) for i in range(len(labels))]
    top = max([*totals, 0]) or 1.0
    slot = (W - PAD_L - 8) / n
    bar_w = max(2.0, slot * 0.7)
    plot_h = H - PAD_B - PAD_T
    parts = [e.render('<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{t}"><title>{t}</title>',
                      w=W, h=H, t=title)]
    for frac in (0, 0.5, 1):
        y = PAD_T + plot_h * (1 - frac)
        parts.append(e.render('<line class="grid" x1="{x1}" x2="{x2}" y1="{y}" y2="{y}"/>'
                              '<text class="axis" x="{tx}" y="{ty}" text-anchor="end">{v}</text>',
                              x1=PAD_L, x2=W - 4, y=f"{y:.1f}", tx=PAD_L - 4, ty=f"{y + 4:.1f}",
                              v=_fmt(top * frac, money)))
    for i, label in enumerate(labels):
        x = PAD_L + i * slot + (slot - bar_w) / 2
        base = float(PAD_T + plot_h)
        for name, values, css in series:
            v = float(values[i])
            if v <= 0:
                continue
            h = plot_h * v / top
            base -= h
            parts.append(e.render('<rect class="{c}" x="{x}" y="{y}" width="{w}" height="{h}">'
                                  '<title>{n} {lab}: {v}</title></rect>', c=css, x=f"{x:.1f}", y=f"{base:.1f}",
                                  w=f"{bar_w:.1f}", h=f"{h:.1f}", n=name, lab=label, v=_fmt(v, money)))
        if n <= 8 or i % -(-n // 7) == 0:
            parts.append(e.render('<text class="axis" x="{x}" y="{y}" text-anchor="middle">{t}</text>',
                                  x=f"{x + bar_w / 2:.1f}", y=H - PAD_B + 14, t=label))
    if len(series) > 1:
        for j, (name, _, css) in enumerate(series):
            parts.append(e.render('<rect class="{c}" x="{x}" y="{y}" width="10" height="10"/>'
                                  '<text class="axis" x="{tx}" y="{ty}">{n}</text>',
                                  c=css, x=PAD_L + j * 110, y=H - 13, tx=PAD_L + j * 110 + 14, ty=H - 4, n=name))
    parts.append(Markup("</svg>"))
    return e.join(parts)


def hbars(e: Escaper, rows: Sequence[tuple[str, float]], *, title: str, money: bool = False) -> Markup:
    """Horizontal bars, one per row (label, value), largest first as given."""
    row_h = 22
    height = max(1, len(rows)) * row_h + 10
    top = max([v for _, v in rows] + [0]) or 1.0
    parts = [e.render('<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{t}"><title>{t}</title>',
                      w=W, h=height, t=title)]
    if not rows:
        parts.append(e.render('<text class="axis" x="8" y="20">{t}</text>', t="no data yet"))
    for i, (label, value) in enumerate(rows):
        y = 5 + i * row_h
        width = (W - 220) * float(value) / top
        parts.append(e.render('<text class="axis" x="110" y="{ty}" text-anchor="end">{lab}</text>'
                              '<rect class="s1" x="116" y="{y}" width="{w}" height="16"><title>{lab}: {v}</title>'
                              '</rect><text class="axis" x="{vx}" y="{ty}">{v}</text>',
                              ty=y + 12, lab=label, y=y, w=f"{max(width, 1):.1f}", vx=f"{122 + width:.1f}",
                              v=_fmt(float(value), money)))
    parts.append(Markup("</svg>"))
    return e.join(parts)


def duration_histogram(e: Escaper, seconds: Sequence[float]) -> Markup:
    counts = [0] * len(DURATION_BUCKETS)
    for s in seconds:
        counts[next(i for i, (limit, _) in enumerate(DURATION_BUCKETS) if s < limit)] += 1
    return bars(e, [label for _, label in DURATION_BUCKETS], [("tasks", counts, "s1")],
                title="completed task duration (created to finished)")
