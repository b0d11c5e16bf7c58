"""Charts drawn on the server as inline SVG: no chart library, nothing from a CDN, no script.

Each chart is an image with a <title> and <desc> for screen readers, every value is also written
as text beside its mark (colour is never the only signal), and the page shows the same numbers in
a table. Styling is by class (app.css): the pages' CSP allows no inline styles.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 760
BAR_WIDTH = 520


@dataclass(frozen=True)
class Point:
    label: str  # under the axis (only some are shown)
    value: float | None  # None: no data, the line breaks there
    note: str  # the point's tooltip and accessible text, e.g. "4月1日 75%(3/4件)"


def _number(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _frame(chart_id: str, title: str, desc: str, width: int, height: int,
           body: list[str]) -> Markup:
    head = (f'<svg class="chart" id="{escape(chart_id)}" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img" '
            f'aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc" '
            'xmlns="http://www.w3.org/2000/svg">'
            f'<title id="{escape(chart_id)}-title">{escape(title)}</title>'
            f'<desc id="{escape(chart_id)}-desc">{escape(desc)}</desc>')
    return Markup(head + "".join(body) + "</svg>")


def line_chart(chart_id: str, title: str, desc: str, points: Sequence[Point], *,
               maximum: float = 100, unit: str = "%", label_every: int = 5) -> Markup:
    """A trend over time (e.g. the answer rate per day), from 0 to `maximum`."""
    height, left, right, top, bottom = 280, 56, 16, 16, 44
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    step = plot_w / max(len(points) - 1, 1)

    def x(index: int) -> float:
        return left + index * step

    def y(value: float) -> float:
        return top + plot_h - min(max(value, 0), maximum) / maximum * plot_h

    body = []
    for tick in range(0, 5):
        value = maximum * tick / 4
        body.append(f'<line class="grid" x1="{left}" x2="{WIDTH - right}" y1="{y(value):.1f}" '
                    f'y2="{y(value):.1f}"/>')
        body.append(f'<text class="axis" x="{left - 8}" y="{y(value) + 5:.1f}" '
                    f'text-anchor="end">{_number(value)}{escape(unit)}</text>')
    for index, point in enumerate(points):
        if index == 0 or (index + 1) % label_every == 0:
            body.append(f'<text class="axis" x="{x(index):.1f}" y="{height - bottom + 22}" '
                        f'text-anchor="middle">{escape(point.label)}</text>')
    segment: list[str] = []
    segments = []
    for index, point in enumerate(points):
        if point.value is None:
            if segment:
                segments.append(segment)
            segment = []
            continue
        segment.append(f"{x(index):.1f},{y(point.value):.1f}")
    if segment:
        segments.append(segment)
    for part in segments:
        body.append(f'<polyline class="line" fill="none" points="{" ".join(part)}"/>')
    for index, point in enumerate(points):
        if point.value is not None:
            body.append(f'<circle class="dot" cx="{x(index):.1f}" cy="{y(point.value):.1f}" r="4">'
                        f'<title>{escape(point.note)}</title></circle>')
    body.append(f'<line class="axis-line" x1="{left}" x2="{WIDTH - right}" y1="{top + plot_h}" '
                f'y2="{top + plot_h}"/>')
    return _frame(chart_id, title, desc, WIDTH, height, body)


def bar_chart(chart_id: str, title: str, desc: str, bars: Sequence[tuple[str, float]], *,
              say: Callable[[float], str] = _number) -> Markup:
    """Counts by category as horizontal bars, each labelled and with its value written out.

    Narrower than a trend chart: two fit side by side at 1280 pixels without shrinking the text.
    """
    width, row, label_w, value_w, top = BAR_WIDTH, 40, 170, 70, 8
    height = top * 2 + row * max(len(bars), 1)
    bar_max = width - label_w - value_w
    largest = max((value for _, value in bars), default=0) or 1
    body = []
    for index, (label, value) in enumerate(bars):
        y = top + index * row
        length = value / largest * bar_max
        body.append(f'<text class="label" x="{label_w - 10}" y="{y + row / 2 + 6:.1f}" '
                    f'text-anchor="end">{escape(label)}</text>')
        body.append(f'<rect class="bar" x="{label_w}" y="{y + 7}" width="{length:.1f}" '
                    f'height="{row - 14}" rx="3"/>')
        body.append(f'<text class="value" x="{label_w + length + 8:.1f}" y="{y + row / 2 + 6:.1f}">'
                    f'{escape(say(value))}</text>')
    return _frame(chart_id, title, desc, width, height, body)
