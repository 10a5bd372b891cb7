"""Inline SVG pictures of the HTML report: the colour scale of the error/tolerance ratio, the heat map of the largest
ratio by check and version (with the drift boundaries), and small learning-rate curve plots.

Nothing here reads records: `heat_map` takes the values it draws. Every function returns SVG markup as a string.
"""

import math
from html import escape

# the ratio scale: a sequential palette from a tiny ratio (pale) to the tolerance (dark), then warm colours above it
BELOW = ("#ffffd9", "#c7e9b4", "#7fcdbb", "#41b6c4", "#1d91c0", "#225ea8", "#0c2c84")
ABOVE = ("#fdae61", "#f46d43", "#d73027", "#a50026")
NO_RATIO = "#ffffff"  # exact agreement, or nothing numeric compared
OUTCOME_FILL = {"known_bug": "#c9a6e8",
                "not_applicable": "#d9d9d9", "skipped": "#ececec", "missing": "#fff3b0", "error": "#f6a04d",
                "none": "#f7f7f7"}
CELL_W, CELL_H, LABEL_W, HEAD_H, FOOT_H = 18, 12, 300, 56, 18


def _e(text):
    return escape(str(text), quote=True)


def _mix(a, b, t):
    """The colour a fraction `t` of the way from hex colour `a` to `b`."""
    ca, cb = (tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in (a, b))
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(ca, cb))


def _along(palette, t):
    """The colour at fraction `t` (0..1) along a palette of evenly spaced stops."""
    t = min(1.0, max(0.0, t)) * (len(palette) - 1)
    i = min(int(t), len(palette) - 2)
    return _mix(palette[i], palette[i + 1], t - i)


def scale_bounds(ratios):
    """The decades the colour scale spans: (lo, hi) with 10**lo <= the smallest positive finite ratio (at least
    1e-12, at most 1e-3) and 10**hi >= the largest (at least 1, the tolerance; at most 1e4)."""
    finite = [r for r in ratios if r and math.isfinite(r) and r > 0]
    lo = min([-3] + [math.floor(math.log10(r)) for r in finite])
    hi = max([0] + [math.ceil(math.log10(r)) for r in finite])
    return max(lo, -12), min(hi, 4)


def ratio_color(ratio, bounds):
    """The heat map's colour of an error/tolerance ratio on the log scale `bounds` (decades lo..hi): pale to dark
    up to 1 (the tolerance), warm above it; white for no ratio (0 or None); the darkest warm for inf or nan."""
    if not ratio:
        return NO_RATIO
    if not math.isfinite(ratio):
        return ABOVE[-1]
    lo, hi = bounds
    x = math.log10(ratio)
    if x <= 0:
        return _along(BELOW, (x - lo) / (0 - lo))
    return _along(ABOVE, x / hi if hi > 0 else 1.0)


def color_legend(bounds, width=640):
    """The colour scale as a horizontal bar with a tick and label per decade, the tolerance (1) marked."""
    lo, hi = bounds
    steps, bar_y, left = 60, 14, 10
    span = width - 2 * left
    parts = []
    for i in range(steps):
        x = lo + (hi - lo) * (i + 0.5) / steps
        parts.append(f'<rect x="{left + span * i / steps:.1f}" y="{bar_y}" width="{span / steps + 0.6:.1f}" '
                     f'height="12" fill="{ratio_color(10 ** x, bounds)}"/>')
    for d in range(lo, hi + 1):
        x = left + span * (d - lo) / (hi - lo)
        label = "1 = tolerance" if d == 0 else f"1e{d}"
        anchor = "start" if d == lo else "end" if d == hi else "middle"
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{bar_y - 3 if d == 0 else bar_y + 12}" y2="{bar_y + 16}" '
                     f'stroke="#000" stroke-width="{2 if d == 0 else 1}"/>'
                     f'<text x="{x:.1f}" y="{bar_y + 27}" text-anchor="{anchor}">{label}</text>')
    parts.append(f'<text x="{left}" y="10">error/tolerance, log scale: pale = far within tolerance, dark = near it, '
                 'warm = over it (fails)</text>')
    return (f'<svg class="scale" width="{width}" height="48" role="img" aria-label="colour scale of error/tolerance">'
            + "".join(parts) + "</svg>")


def heat_map(rows, columns, values, boundaries, bounds):
    """The heat map: a rect (class `hm`) per (row, column).

    `rows`: [(check id, href of its matrix row)]; `columns`: column labels; `values[(row i, column j)]` =
    (ratio or None, outcome, href, title); `boundaries`: [(column index the new rule starts at, label, title,
    row indices that observe it)], drawn as a dashed line before that column with a mark on each observing row.
    """
    width = LABEL_W + CELL_W * len(columns) + 30
    height = HEAD_H + CELL_H * len(rows) + FOOT_H
    bottom = HEAD_H + CELL_H * len(rows)
    parts = []
    for j, label in enumerate(columns):
        x = LABEL_W + CELL_W * j + CELL_W / 2
        parts.append(f'<text class="col" transform="translate({x:.0f},{HEAD_H - 4}) rotate(-60)">{_e(label)}</text>')
    for i, (check, href) in enumerate(rows):
        y = HEAD_H + CELL_H * i
        parts.append(f'<a href="{_e(href)}"><text class="row" x="{LABEL_W - 4}" y="{y + CELL_H - 2}" '
                     f'text-anchor="end">{_e(check)}</text></a>')
        for j in range(len(columns)):
            ratio, outcome, link, title = values.get((i, j), (None, "none", None, f"{check}: not run"))
            fill = ratio_color(ratio, bounds) if outcome in ("pass", "explained", "fail") else OUTCOME_FILL.get(
                outcome, OUTCOME_FILL["none"])
            stroke = ' stroke="#000" stroke-width="1.5"' if outcome in ("fail", "error") else (
                ' stroke="#bbb" stroke-width="0.5"' if fill == NO_RATIO else "")
            rect = (f'<rect class="hm" x="{LABEL_W + CELL_W * j}" y="{y}" width="{CELL_W - 1}" height="{CELL_H - 1}" '
                    f'fill="{fill}"{stroke}><title>{_e(title)}</title></rect>')
            parts.append(f'<a href="{_e(link)}">{rect}</a>' if link else rect)
    for column, label, title, marked in boundaries:
        x = LABEL_W + CELL_W * column - 0.5
        parts.append(f'<g class="boundary"><title>{_e(title)}</title>'
                     f'<line x1="{x}" x2="{x}" y1="{HEAD_H}" y2="{bottom + 4}" stroke="#fff" stroke-width="3"/>'
                     f'<line x1="{x}" x2="{x}" y1="{HEAD_H}" y2="{bottom + 4}" stroke="#7b2ff7" stroke-width="1.5" '
                     f'stroke-dasharray="3,2"/><text x="{x}" y="{bottom + 14}" text-anchor="middle" '
                     f'class="blabel">{_e(label)}</text>'
                     + "".join(f'<rect x="{x - 2}" y="{HEAD_H + CELL_H * i}" width="4" height="{CELL_H - 1}" '
                               'fill="#7b2ff7"/>' for i in marked) + "</g>")
    return (f'<svg id="heatmap" width="{width}" height="{height}" role="img" aria-labelledby="heatmap-title">'
            f'<title id="heatmap-title">largest error/tolerance by check and version</title>{"".join(parts)}</svg>')


def curve_plot(title, steps, before, after, width=300, height=150):
    """A plot of learning-rate multipliers by step: `after` (the new rule) solid, `before` (the old rule) dashed;
    either may be None (not derivable: not drawn, and the legend says so)."""
    left, right, top, bottom = 34, 8, 18, 22
    curves = [c for c in (before, after) if c is not None]
    ymax = max(1.0, max(max(c) for c in curves)) if curves else 1.0
    xmax = max(steps[-1], 1)

    def point(t, m):
        return (left + (width - left - right) * t / xmax, top + (height - top - bottom) * (1 - m / ymax))

    def line(values, style):
        pts = " ".join("{:.1f},{:.1f}".format(*point(t, m)) for t, m in zip(steps, values))
        return f'<polyline points="{pts}" fill="none" {style}/>'

    x0, y0 = point(0, 0)
    x1, y1 = point(xmax, ymax)
    parts = [f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="#444"/>',
             f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="#444"/>',
             f'<text x="{x0 - 3}" y="{y0}" text-anchor="end">0</text>',
             f'<text x="{x0 - 3}" y="{y1 + 8}" text-anchor="end">{ymax:g}</text>',
             f'<text x="{x1}" y="{y0 + 13}" text-anchor="end">step {xmax:g}</text>',
             f'<text x="{x0}" y="{y0 + 13}">0</text>']
    if before is not None:
        parts.append(line(before, 'class="before" stroke="#e66101" stroke-width="2" stroke-dasharray="5,3"'))
    if after is not None:
        parts.append(line(after, 'class="after" stroke="#2166ac" stroke-width="1.5"'))
    keys = [("before", "#e66101", before is not None), ("after", "#2166ac", after is not None)]
    for k, (name, color, drawn) in enumerate(keys):
        parts.append(f'<text x="{left + 4 + 150 * k}" y="11" fill="{color}">{name}'
                     f'{"" if drawn else ": refused, no curve"}</text>')
    return (f'<svg class="curve" width="{width}" height="{height}" role="img" aria-label="{_e(title)}">'
            f'<title>{_e(title)}</title>{"".join(parts)}</svg>')
