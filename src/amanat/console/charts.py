"""Small server-rendered SVG charts for the console: a series of counts over time as a
line or as bars, with its axes labelled.

Pure (no I/O, no template): :func:`chart` lays the series out and returns the SVG as
:class:`markupsafe.Markup`, every text in it escaped here, so a template inserts it as it
is (no ``| safe``). The console's CSP allows no inline style, so the look comes from
classes in ``console.css``; SVG presentation attributes (``fill``, ``stroke``) give a
readable fallback. Each chart is an image to assistive technology (``role="img"``,
``aria-label``, ``<title>``) with a ``<desc>`` that reads out the numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from markupsafe import Markup, escape

WIDTH = 640
HEIGHT = 180
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 26


@dataclass(frozen=True, slots=True)
class Point:
    label: str
    """What the x axis says of it (a time)."""
    value: int


@dataclass(frozen=True, slots=True)
class Layout:
    """Where each value lands, in the SVG's own coordinates (y grows downwards)."""

    xs: list[float]
    ys: list[float]
    top_value: int
    bar_width: float


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5 × 10ⁿ at or above ``value`` (at least 1)."""
    if value <= 1:
        return 1
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if step * magnitude >= value:
                return step * magnitude
        magnitude *= 10


def layout(values: Sequence[int], *, width: int = WIDTH, height: int = HEIGHT) -> Layout:
    plot_w = width - LEFT - RIGHT
    plot_h = height - TOP - BOTTOM
    top_value = nice_ceiling(max(values, default=0))
    n = len(values)
    slot = plot_w / n if n else plot_w
    xs = [LEFT + slot * (i + 0.5) for i in range(n)]
    ys = [TOP + plot_h * (1 - max(v, 0) / top_value) for v in values]
    return Layout(xs=xs, ys=ys, top_value=top_value, bar_width=max(slot * 0.7, 1.0))


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def chart(
    points: Sequence[Point],
    *,
    title: str,
    kind: Literal["line", "bars"] = "line",
    unit: str = "",
    css_class: str = "",
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Markup:
    """The SVG of ``points``; an empty series draws the axes and says so."""
    values = [p.value for p in points]
    shape = layout(values, width=width, height=height)
    bottom = height - BOTTOM
    right = width - RIGHT
    e = escape
    summary = ", ".join(f"{p.label}: {p.value}{unit}" for p in points) if points else "no data"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {e(css_class)}" '
        f'viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{e(title)}">',
        f"<title>{e(title)}</title>",
        f"<desc>{e(summary)}</desc>",
        # Axes and the gridline at the top value.
        f'<line class="chart-axis" x1="{LEFT}" y1="{bottom}" x2="{right}" y2="{bottom}" '
        'stroke="#5f6368" stroke-width="1"/>',
        f'<line class="chart-axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}" '
        'stroke="#5f6368" stroke-width="1"/>',
        f'<line class="chart-grid" x1="{LEFT}" y1="{TOP}" x2="{right}" y2="{TOP}" '
        'stroke="#dadce0" stroke-width="1"/>',
        f'<text class="chart-tick" x="{LEFT - 6}" y="{bottom}" text-anchor="end" '
        'dominant-baseline="middle" fill="#3c4043" font-size="11">0</text>',
        f'<text class="chart-tick" x="{LEFT - 6}" y="{TOP}" text-anchor="end" '
        f'dominant-baseline="middle" fill="#3c4043" font-size="11">{shape.top_value}</text>',
    ]
    if not points:
        parts.append(
            f'<text class="chart-empty" x="{(LEFT + right) / 2:.1f}" y="{(TOP + bottom) / 2:.1f}" '
            'text-anchor="middle" fill="#3c4043" font-size="12">No data in this window</text>'
        )
    elif kind == "bars":
        for p, x, y in zip(points, shape.xs, shape.ys, strict=True):
            parts.append(
                f'<rect class="chart-bar" x="{_n(x - shape.bar_width / 2)}" y="{_n(y)}" '
                f'width="{_n(shape.bar_width)}" height="{_n(bottom - y)}" fill="#0b5c4a">'
                f"<title>{e(p.label)}: {p.value}{e(unit)}</title></rect>"
            )
    else:
        coords = " ".join(f"{_n(x)},{_n(y)}" for x, y in zip(shape.xs, shape.ys, strict=True))
        parts.append(
            f'<polyline class="chart-line" points="{coords}" fill="none" stroke="#0b5c4a" '
            'stroke-width="2"/>'
        )
        for p, x, y in zip(points, shape.xs, shape.ys, strict=True):
            parts.append(
                f'<circle class="chart-dot" cx="{_n(x)}" cy="{_n(y)}" r="2.5" fill="#0b5c4a">'
                f"<title>{e(p.label)}: {p.value}{e(unit)}</title></circle>"
            )
    # First, middle and last labels on the x axis.
    if points:
        shown = sorted({0, len(points) // 2, len(points) - 1})
        for i in shown:
            anchor = "start" if i == 0 else "end" if i == len(points) - 1 else "middle"
            parts.append(
                f'<text class="chart-tick" x="{_n(shape.xs[i])}" y="{height - 8}" '
                f'text-anchor="{anchor}" fill="#3c4043" font-size="11">'
                f"{e(points[i].label)}</text>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text above is escaped
