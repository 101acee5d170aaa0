"""Charts as server-rendered SVG: no JavaScript, no style attributes (the CSP forbids
them); colours come from classes in static/reporting.css. Every chart has a text title
and a description for screen readers, each bar a tooltip, and a table under it on the
page with the same numbers."""
from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape


def _fmt(value: float) -> str:
    return f"{value:,.0f}".replace(",", ".")


def _axis_top(peak: float) -> float:
    """The top of the value axis: an even multiple of a power of ten, at least ``peak``,
    so that the middle grid line falls on a whole number (3 -> 4, 13 -> 20, 150 -> 200)."""
    magnitude = 1
    while magnitude * 10 < peak:
        magnitude *= 10
    return next(step * magnitude for step in (2, 4, 6, 8, 10) if step * magnitude >= peak)


def bar_chart(items: Sequence[tuple[str, float]], *, title: str, tone: str = "primary", height: int = 180,
              label_every: int = 1, stacked: Sequence[float] | None = None, stacked_tone: str = "danger") -> Markup:
    """Vertical bars (one per item); ``stacked`` values are drawn over the bottom of each bar."""
    width, top, bottom, left = 720, 12, 28, 44
    count = max(len(items), 1)
    peak = _axis_top(max([v for _, v in items] + [1]))
    slot = (width - left) / count
    bar = max(slot * 0.7, 1)
    plot = height - top - bottom
    parts = [f'<svg class="chart chart--bars" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{escape(title)}" preserveAspectRatio="xMidYMid meet">',
             f"<title>{escape(title)}</title>"]
    for fraction in (0, 0.5, 1):
        y = top + plot * (1 - fraction)
        parts.append(f'<line class="chart__grid" x1="{left}" x2="{width}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="chart__axis" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f"{_fmt(peak * fraction)}</text>")
    for i, (label, value) in enumerate(items):
        x = left + i * slot + (slot - bar) / 2
        h = plot * value / peak
        parts.append(f'<rect class="chart__bar chart__bar--{tone}" x="{x:.1f}" y="{top + plot - h:.1f}" '
                     f'width="{bar:.1f}" height="{h:.1f}"><title>{escape(label)}: {_fmt(value)}</title></rect>')
        if stacked is not None and stacked[i]:
            hs = plot * stacked[i] / peak
            parts.append(f'<rect class="chart__bar chart__bar--{stacked_tone}" x="{x:.1f}" '
                         f'y="{top + plot - hs:.1f}" width="{bar:.1f}" height="{hs:.1f}">'
                         f"<title>{escape(label)}: {_fmt(stacked[i])}</title></rect>")
        if i % label_every == 0:
            parts.append(f'<text class="chart__label" x="{x + bar / 2:.1f}" y="{height - 10}" '
                         f'text-anchor="middle">{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def hbar_chart(items: Sequence[tuple[str, float]], *, title: str, tone: str = "primary") -> Markup:
    """Horizontal bars with the label on the left and the value at the end of each bar."""
    row, label_width, width = 26, 230, 720
    height = max(len(items), 1) * row + 8
    peak = max([v for _, v in items] + [1])
    room = width - label_width - 70
    parts = [f'<svg class="chart chart--hbars" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{escape(title)}" preserveAspectRatio="xMinYMin meet">', f"<title>{escape(title)}</title>"]
    for i, (label, value) in enumerate(items):
        y = 4 + i * row
        w = room * value / peak
        short = label if len(label) <= 34 else label[:33] + "…"
        parts.append(f'<text class="chart__label" x="{label_width - 8}" y="{y + 16}" text-anchor="end">'
                     f"{escape(short)}</text>")
        parts.append(f'<rect class="chart__bar chart__bar--{tone}" x="{label_width}" y="{y + 3}" '
                     f'width="{max(w, 1):.1f}" height="{row - 8}"><title>{escape(label)}: {_fmt(value)}</title></rect>')
        parts.append(f'<text class="chart__value" x="{label_width + w + 6:.1f}" y="{y + 16}">{_fmt(value)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
