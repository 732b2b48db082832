"""Small inline SVG charts for the report: drawn from numbers already in the results, no statistics here."""

from __future__ import annotations

from html import escape
from typing import Mapping, Sequence

COLORS = ("#0b5394", "#c55a11", "#38761d", "#7f3f98", "#a61c00", "#45818e")
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 420, 150, 36, 24, 16


def _frame(body: str, title: str, legend: Sequence[str] = ()) -> str:
    keys = "".join(f'<rect x="{LEFT + 6 + 90 * i}" y="2" width="9" height="9" fill="{COLORS[i % len(COLORS)]}"/>'
                   f'<text x="{LEFT + 18 + 90 * i}" y="10">{escape(str(name))}</text>' for i, name in enumerate(legend))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
            f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(title)}" '
            f'font-family="DejaVu Sans, sans-serif" font-size="8"><title>{escape(title)}</title>{keys}{body}'
            f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - 4}" y2="{HEIGHT - BOTTOM}" stroke="#555"/></svg>')


def _y_axis(top_value: float) -> str:
    label = f"{top_value:.3g}"
    return (f'<text x="{LEFT - 4}" y="{TOP + 3}" text-anchor="end">{label}</text>'
            f'<text x="{LEFT - 4}" y="{HEIGHT - BOTTOM}" text-anchor="end">0</text>'
            f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}" stroke="#555"/>')


def bars(categories: Sequence[str], series: Mapping[str, Sequence[float]], title: str) -> str:
    """Grouped bars: one group per category (e.g. layer), one bar per series."""
    names = list(series)
    peak = max([max(values, default=0) for values in series.values()] + [1])
    slot = (WIDTH - LEFT - 8) / max(len(categories), 1)
    width = slot * 0.8 / max(len(names), 1)
    plot_h = HEIGHT - BOTTOM - TOP
    body = [_y_axis(peak)]
    for c, category in enumerate(categories):
        x0 = LEFT + 4 + c * slot
        body.append(f'<text x="{x0 + slot * 0.4:.1f}" y="{HEIGHT - BOTTOM + 10}" text-anchor="middle">'
                    f'{escape(str(category))}</text>')
        for s, name in enumerate(names):
            value = series[name][c]
            h = plot_h * value / peak
            body.append(f'<rect x="{x0 + s * width:.1f}" y="{HEIGHT - BOTTOM - h:.1f}" width="{width:.1f}" '
                        f'height="{h:.1f}" fill="{COLORS[s % len(COLORS)]}"><title>{escape(name)} '
                        f'{escape(str(category))}: {value}</title></rect>')
    return _frame("".join(body), title, names if len(names) > 1 else ())


def histogram(edges: Sequence[float], series: Mapping[str, Sequence[float]], title: str) -> str:
    """Overlaid step histograms on shared bins."""
    names = list(series)
    peak = max([max(values, default=0) for values in series.values()] + [1])
    low, high = edges[0], edges[-1]
    span = (high - low) or 1.0
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP

    def x(value: float) -> float:
        return LEFT + 4 + plot_w * (value - low) / span

    body = [_y_axis(peak), f'<text x="{x(low):.1f}" y="{HEIGHT - BOTTOM + 10}">{low:.3g}</text>',
            f'<text x="{x(high):.1f}" y="{HEIGHT - BOTTOM + 10}" text-anchor="end">{high:.3g}</text>']
    for s, name in enumerate(names):
        points = []
        for i, count in enumerate(series[name]):
            y = HEIGHT - BOTTOM - plot_h * count / peak
            points += [f"{x(edges[i]):.1f},{y:.1f}", f"{x(edges[i + 1]):.1f},{y:.1f}"]
        path = f"{x(low):.1f},{HEIGHT - BOTTOM} " + " ".join(points) + f" {x(high):.1f},{HEIGHT - BOTTOM}"
        color = COLORS[s % len(COLORS)]
        body.append(f'<polyline points="{path}" fill="{color}" fill-opacity="0.25" stroke="{color}"/>')
    return _frame("".join(body), title, names if len(names) > 1 else ())


def effect_vs_null(null: Sequence[float], effect: float, title: str) -> str:
    """Null effects as dots on a line, the flagged neurons' effect as a red bar (missing values are skipped)."""
    null = [v for v in null if v is not None and v == v]
    if effect is None or effect != effect:
        return ""
    values = [*null, effect]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    plot_w, mid = WIDTH - LEFT - 20, (HEIGHT - BOTTOM + TOP) / 2

    def x(value: float) -> float:
        return LEFT + 8 + plot_w * (value - low) / span

    anchor = "end" if x(effect) > WIDTH * 0.7 else ("start" if x(effect) < WIDTH * 0.3 else "middle")
    dots = "".join(f'<circle cx="{x(v):.1f}" cy="{mid + (i % 5 - 2) * 6:.1f}" r="3" fill="#888" fill-opacity="0.7"/>'
                   for i, v in enumerate(null))
    body = (f'{dots}<line x1="{x(effect):.1f}" y1="{TOP}" x2="{x(effect):.1f}" y2="{HEIGHT - BOTTOM}" '
            f'stroke="#c00" stroke-width="2"/><text x="{x(effect):.1f}" y="{TOP - 4}" text-anchor="{anchor}" '
            f'fill="#c00">flagged {effect:.3g}</text>'
            f'<text x="{x(low):.1f}" y="{HEIGHT - BOTTOM + 10}">{low:.3g}</text>'
            f'<text x="{x(high):.1f}" y="{HEIGHT - BOTTOM + 10}" text-anchor="end">{high:.3g}</text>')
    return _frame(body, title)
