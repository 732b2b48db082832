"""Small inline SVG charts for the report: drawn from numbers already in the results, no statistics here."""

from __future__ import annotations

import math
from html import escape
from typing import Mapping, Sequence

COLORS = ("#0b5394", "#c55a11", "#38761d", "#7f3f98", "#a61c00", "#45818e")
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 420, 162, 46, 34, 16


def _frame(body: str, title: str, legend: Sequence[str] = (), *, x_label: str = "", y_label: str = "") -> str:
    """The SVG around a chart: legend, x axis line, and axis titles (every chart names both axes)."""
    keys = "".join(f'<rect x="{LEFT + 6 + 110 * i}" y="2" width="9" height="9" fill="{COLORS[i % len(COLORS)]}"/>'
                   f'<text x="{LEFT + 18 + 110 * i}" y="10">{escape(str(name))}</text>'
                   for i, name in enumerate(legend))
    middle_y = (TOP + HEIGHT - BOTTOM) / 2
    titles = (f'<text class="axis-title" x="{(LEFT + WIDTH) / 2:.0f}" y="{HEIGHT - 3}" text-anchor="middle">'
              f'{escape(x_label)}</text>' if x_label else "")
    titles += (f'<text class="axis-title" x="9" y="{middle_y:.0f}" text-anchor="middle" '
               f'transform="rotate(-90 9 {middle_y:.0f})">{escape(y_label)}</text>' if y_label else "")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
            f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(title)}" '
            f'font-family="DejaVu Sans, sans-serif" font-size="8"><title>{escape(title)}</title>{keys}{body}{titles}'
            f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - 4}" y2="{HEIGHT - BOTTOM}" stroke="#555"/></svg>')


def nice_scale(peak: float, ticks: int = 4) -> tuple[float, float]:
    """The axis top and tick step for values up to ``peak``: a step of 1, 2 or 5 × 10^k, so tick labels are round
    numbers (counts stay whole)."""
    peak = max(float(peak), 1e-12)
    raw = peak / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return step * math.ceil(peak / step - 1e-9), step


def _y_axis(top_value: float, step: float) -> str:
    """The y axis with tick marks and labels every ``step`` from 0 to ``top_value``."""
    plot_h = HEIGHT - BOTTOM - TOP
    parts = [f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}" stroke="#555"/>']
    for i in range(int(round(top_value / step)) + 1):
        value = step * i
        y = HEIGHT - BOTTOM - plot_h * value / top_value
        parts.append(f'<line x1="{LEFT - 3}" y1="{y:.1f}" x2="{LEFT}" y2="{y:.1f}" stroke="#555"/>'
                     f'<text x="{LEFT - 5}" y="{y + 3:.1f}" text-anchor="end">{value:.4g}</text>')
    return "".join(parts)


def _x_ticks(low: float, high: float, position, ticks: int = 4) -> str:
    """Tick marks and labels along the x axis of a continuous chart."""
    parts = []
    for i in range(ticks + 1):
        value = low + (high - low) * i / ticks
        x = position(value)
        anchor = "start" if i == 0 else ("end" if i == ticks else "middle")
        parts.append(f'<line x1="{x:.1f}" y1="{HEIGHT - BOTTOM}" x2="{x:.1f}" y2="{HEIGHT - BOTTOM + 3}" '
                     f'stroke="#555"/><text x="{x:.1f}" y="{HEIGHT - BOTTOM + 12}" text-anchor="{anchor}">'
                     f'{value:.3g}</text>')
    return "".join(parts)


def bars(categories: Sequence[str], series: Mapping[str, Sequence[float]], title: str, *, x_label: str = "layer",
         y_label: str = "neurons") -> str:
    """Grouped bars: one group per category (e.g. layer), one bar per series."""
    names = list(series)
    peak, step = nice_scale(max([max((v for v in values if v is not None), default=0) for values in series.values()] + [1]))
    slot = (WIDTH - LEFT - 8) / max(len(categories), 1)
    width = slot * 0.8 / max(len(names), 1)
    plot_h = HEIGHT - BOTTOM - TOP
    body = [_y_axis(peak, step)]
    for c, category in enumerate(categories):
        x0 = LEFT + 4 + c * slot
        body.append(f'<text x="{x0 + slot * 0.4:.1f}" y="{HEIGHT - BOTTOM + 10}" text-anchor="middle">'
                    f'{escape(str(category))}</text>')
        for s, name in enumerate(names):
            value = series[name][c]
            if value is None:  # not computed in this run (NaN is written as null): no bar
                continue
            h = plot_h * value / peak
            body.append(f'<rect x="{x0 + s * width:.1f}" y="{HEIGHT - BOTTOM - h:.1f}" width="{width:.1f}" '
                        f'height="{h:.1f}" fill="{COLORS[s % len(COLORS)]}"><title>{escape(name)} '
                        f'{escape(str(category))}: {value}</title></rect>')
    return _frame("".join(body), title, names if len(names) > 1 else (), x_label=x_label, y_label=y_label)


def histogram(edges: Sequence[float], series: Mapping[str, Sequence[float]], title: str, *, x_label: str = "value",
              y_label: str = "count") -> str:
    """Overlaid step histograms on shared bins."""
    names = list(series)
    peak, step = nice_scale(max([max(values, default=0) for values in series.values()] + [1]))
    low, high = edges[0], edges[-1]
    span = (high - low) or 1.0
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP

    def x(value: float) -> float:
        return LEFT + 4 + plot_w * (value - low) / span

    body = [_y_axis(peak, step), _x_ticks(low, high, x)]
    for s, name in enumerate(names):
        points = []
        for i, count in enumerate(series[name]):
            y = HEIGHT - BOTTOM - plot_h * count / peak
            points += [f"{x(edges[i]):.1f},{y:.1f}", f"{x(edges[i + 1]):.1f},{y:.1f}"]
        path = f"{x(low):.1f},{HEIGHT - BOTTOM} " + " ".join(points) + f" {x(high):.1f},{HEIGHT - BOTTOM}"
        color = COLORS[s % len(COLORS)]
        body.append(f'<polyline points="{path}" fill="{color}" fill-opacity="0.25" stroke="{color}"/>')
    return _frame("".join(body), title, names if len(names) > 1 else (), x_label=x_label, y_label=y_label)


def effect_vs_null(null: Sequence[float], effect: float, title: str, *, x_label: str = "effect of ablation") -> str:
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
            f'fill="#c00">flagged {effect:.3g}</text>' + _x_ticks(low, high, x)
            + f'<text x="{LEFT - 4}" y="{mid + 3:.1f}" text-anchor="end">random sets</text>')
    return _frame(body, title, x_label=x_label)


def neuron_graph(patterns: Sequence[Mapping], title: str, *, limit: int = 12) -> str:
    """An N2G graph as SVG: activating tokens on the right, their context tokens leftwards (``*``: any
    token); a node's fill darkens with the activation of the pattern ending there. The ``limit`` strongest
    firing patterns are drawn."""
    chosen = [p for p in patterns if p["activation"] >= 0.5][:limit]
    if not chosen:
        return ""
    nodes: dict[tuple[str, ...], dict] = {}
    for row, item in enumerate(sorted(chosen, key=lambda p: tuple(p["tokens"]))):
        path = tuple(item["tokens"])
        for depth in range(1, len(path) + 1):
            node = nodes.setdefault(path[:depth], {"rows": [], "value": None})
            node["rows"].append(row)
        nodes[path]["value"] = item["activation"]
    depth_max = max(len(k) for k in nodes)
    column, line, box = 96, 22, 88
    width, height = column * depth_max + 8, line * len(chosen) + 24
    top = max(p["activation"] for p in chosen)

    def place(key: tuple[str, ...]) -> tuple[float, float]:
        rows = nodes[key]["rows"]
        return width - column * len(key) + 4, 20 + line * (sum(rows) / len(rows))

    parts = []
    for key in nodes:
        if len(key) > 1:
            (x1, y1), (x2, y2) = place(key), place(key[:-1])
            parts.append(f'<line x1="{x1 + box:.0f}" y1="{y1 + 7:.0f}" x2="{x2:.0f}" y2="{y2 + 7:.0f}" stroke="#999"/>')
    for key, node in nodes.items():
        x, y = place(key)
        shade = 0.15 + 0.75 * (node["value"] / top) if node["value"] is not None else 0.0
        fill = f"rgba(214,39,40,{shade:.2f})" if node["value"] is not None else "#f4f4f4"
        label = key[-1].replace("Ġ", "").replace("▁", "")
        label = label if len(label) <= 12 else label[:11] + "…"
        parts.append(f'<rect x="{x:.0f}" y="{y - 5:.0f}" width="{box}" height="18" rx="3" fill="{fill}" '
                     f'stroke="#777"/><text x="{x + box / 2:.0f}" y="{y + 8:.0f}" font-size="10" '
                     f'text-anchor="middle">{escape(label)}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" viewBox="0 0 {width} {height}" '
            f'width="{width}" role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
            + "".join(parts) + "</svg>")


def dose_response(rows: Sequence[Mapping], title: str, *, y_title: str) -> str:
    """Effect against the number of ablated neurons k (log scale; AurA dampening as a last point apart), with
    the matched null's band (mean to 95th percentile) shaded; validated doses are filled dots. Rows carry
    ``k``, ``effect``, ``null_mean``, ``null_p95`` and ``validated``; the y axis starts at 0 or the lowest value."""
    import math

    rows = [r for r in rows if r.get("effect") is not None]
    if not rows:
        return ""
    width, height, left, bottom, top, right = 460, 190, 58, 38, 14, 12
    ladder = [r for r in rows if isinstance(r["k"], int)]
    extra = [r for r in rows if not isinstance(r["k"], int)]
    values = [v for r in rows for v in (r["effect"], r["null_mean"], r["null_p95"]) if v is not None]
    low, high = min(0.0, *values), max(values)
    span = (high - low) or 1.0
    slots = (math.log10(max(r["k"] for r in ladder)) if ladder else 0.0) + (1.0 if extra else 0.0)
    plot_w, plot_h = width - left - right, height - bottom - top

    def x(row: Mapping) -> float:
        position = math.log10(row["k"]) if isinstance(row["k"], int) else slots
        return left + 10 + (plot_w - 20) * (position / slots if slots else 0.5)

    def y(value: float) -> float:
        return top + plot_h * (1 - (value - low) / span)

    parts = [f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#555"/>',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#555"/>']
    for tick in (low, low + span / 2, high):
        parts.append(f'<line x1="{left - 3}" y1="{y(tick):.1f}" x2="{left}" y2="{y(tick):.1f}" stroke="#555"/>'
                     f'<text x="{left - 5}" y="{y(tick) + 3:.1f}" text-anchor="end">{tick:.3g}</text>')
    for row in rows:
        label = "AurA" if not isinstance(row["k"], int) else str(row["k"])
        parts.append(f'<line x1="{x(row):.1f}" y1="{height - bottom}" x2="{x(row):.1f}" y2="{height - bottom + 3}" '
                     f'stroke="#555"/><text x="{x(row):.1f}" y="{height - bottom + 12}" text-anchor="middle">'
                     f'{escape(label)}</text>')
    parts.append(f'<text x="{left + plot_w / 2:.0f}" y="{height - 6}" text-anchor="middle">neurons ablated, k '
                 f'(log scale; AurA: every neuron with AUROC &gt; 0.5 dampened)</text>'
                 f'<text x="12" y="{top + plot_h / 2:.0f}" text-anchor="middle" '
                 f'transform="rotate(-90 12 {top + plot_h / 2:.0f})">{escape(y_title)}</text>')
    for group in (ladder, extra):
        if not group:
            continue
        upper = [f"{x(r):.1f},{y(r['null_p95']):.1f}" for r in group]
        lower = [f"{x(r):.1f},{y(r['null_mean']):.1f}" for r in reversed(group)]
        if len(group) == 1:
            r = group[0]
            band_top, band_bottom = sorted((y(r["null_p95"]), y(r["null_mean"])))
            parts.append(f'<rect x="{x(r) - 6:.1f}" y="{band_top:.1f}" width="12" '
                         f'height="{band_bottom - band_top + 1:.1f}" fill="#888" fill-opacity="0.3"/>')
        else:
            parts.append(f'<polygon points="{" ".join(upper + lower)}" fill="#888" fill-opacity="0.3"/>')
    if len(ladder) > 1:
        line = " ".join(f"{x(r):.1f},{y(r['effect']):.1f}" for r in ladder)
        parts.append(f'<polyline points="{line}" fill="none" stroke="{COLORS[0]}" stroke-width="1.5"/>')
    for row in rows:
        fill = COLORS[0] if row.get("validated") else "white"
        tip = (f"k {row['k']}: effect {row['effect']:.3g}, null mean {row['null_mean']:.3g}, "
               f"95th percentile {row['null_p95']:.3g}")
        parts.append(f'<circle cx="{x(row):.1f}" cy="{y(row["effect"]):.1f}" r="3.5" fill="{fill}" '
                     f'stroke="{COLORS[0]}"><title>{escape(tip)}</title></circle>')
    legend = (f'<rect x="{left + 8}" y="2" width="9" height="9" fill="#888" fill-opacity="0.3"/>'
              f'<text x="{left + 20}" y="10">matched random sets: mean to 95th percentile</text>'
              f'<circle cx="{left + 232}" cy="7" r="3.5" fill="{COLORS[0]}"/>'
              f'<text x="{left + 239}" y="10">flagged (filled: validated, corrected p &lt; 0.05)</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" role="img" aria-label="{escape(title)}" font-family="DejaVu Sans, sans-serif" '
            f'font-size="8"><title>{escape(title)}</title>{legend}{"".join(parts)}</svg>')
def heatmap(rows: Sequence[str], columns: Sequence[str], values: Sequence[Sequence[float]], title: str, *,
            x_title: str, y_title: str, centre: float = 1.0, fmt: str = "×{:.2f}") -> str:
    """A cell grid (rows × columns) of positive ratios coloured by their log distance from ``centre``: red
    above, blue below, white at it, each cell labelled with its value; the axis titles name what the rows and
    columns are."""
    cell_w, cell_h, left, top = 52, 22, 100, 40
    width, height = left + cell_w * len(columns) + 8, top + cell_h * len(rows) + 8

    def distance(value: float) -> float:
        return abs(math.log(max(float(value), 1e-12) / centre))

    finite = [distance(v) for row in values for v in row if v is not None and v == v]
    spread = max(finite, default=0.0) or 1.0
    parts = [f'<text x="{left + cell_w * len(columns) / 2:.0f}" y="11" text-anchor="middle" font-weight="bold">'
             f'{escape(x_title)}</text>',
             f'<text x="10" y="{top + cell_h * len(rows) / 2:.0f}" text-anchor="middle" font-weight="bold" '
             f'transform="rotate(-90 10 {top + cell_h * len(rows) / 2:.0f})">{escape(y_title)}</text>']
    for c, name in enumerate(columns):
        parts.append(f'<text x="{left + cell_w * (c + 0.5):.0f}" y="{top - 6}" text-anchor="middle">{escape(str(name))}</text>')
    for r, name in enumerate(rows):
        y = top + cell_h * r
        parts.append(f'<text x="{left - 6}" y="{y + cell_h * 0.65:.0f}" text-anchor="end">{escape(str(name))}</text>')
        for c, value in enumerate(values[r]):
            x = left + cell_w * c
            if value is None or value != value:
                fill, label = "#eeeeee", "–"
            else:
                share = min(distance(value) / spread, 1.0)
                tone = int(255 * (1 - 0.75 * share))
                fill = f"rgb(255,{tone},{tone})" if value >= centre else f"rgb({tone},{tone},255)"
                label = fmt.format(float(value))
            parts.append(f'<rect x="{x}" y="{y}" width="{cell_w - 2}" height="{cell_h - 2}" fill="{fill}" stroke="#bbb">'
                         f'<title>{escape(str(rows[r]))} → {escape(str(columns[c]))}: {escape(label)}</title></rect>'
                         f'<text x="{x + cell_w / 2 - 1:.0f}" y="{y + cell_h * 0.65:.0f}" text-anchor="middle">'
                         f'{escape(label)}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="heatmap" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}" '
            f'font-family="DejaVu Sans, sans-serif" font-size="9"><title>{escape(title)}</title>{"".join(parts)}</svg>')
