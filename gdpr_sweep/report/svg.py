"""Inline SVG charts: stacked bars with axis, labels and a legend — no script, no font
or image from anywhere, readable in print (patterns are not needed: every bar's numbers
are in the table beside it)."""

from __future__ import annotations

from html import escape

#: Okabe-Ito and Tol colours: distinguishable with the common colour-vision deficiencies.
PALETTE = (
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00",
    "#F0E442", "#332288", "#882255", "#44AA99", "#999933", "#AA4499",
)  # fmt: skip
WIDTH, PLOT_HEIGHT, LEFT, TOP = 720, 180, 56, 12


def _nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 times 10^k at or above `value` (at least 1)."""
    if value <= 1:
        return 1
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def stacked_bars(
    title: str, labels: list[str], series: list[tuple[str, list[int]]], unit: str = "rows"
) -> str:
    """An SVG of one stacked bar per label; `series`: (name, one value per label)."""
    totals = [sum(values[i] for _name, values in series) for i in range(len(labels))]
    top = _nice_ceiling(max(totals, default=0))
    count = max(len(labels), 1)
    slot = (WIDTH - LEFT - 8) / count
    bar = max(min(slot * 0.7, 48), 2)
    longest = max((len(name) for name, _values in series), default=0)
    legend_width = max(120, 7 * longest + 28)  # about 6.5 px a character at 11 px
    per_row = max(1, (WIDTH - LEFT) // legend_width)
    legend_rows = (len(series) + per_row - 1) // per_row
    height = TOP + PLOT_HEIGHT + 44 + 18 * legend_rows
    base = TOP + PLOT_HEIGHT
    parts = [
        f'<svg class="chart" role="img" '
        f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}">',
        f"<title>{escape(title)}</title>",
    ]
    for fraction in (0, 0.5, 1):  # the axis: 0, half, top
        y = base - PLOT_HEIGHT * fraction
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - 8}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{int(top * fraction):,}</text>"
        )
    parts.append(
        f'<text x="12" y="{TOP + PLOT_HEIGHT / 2:.0f}" transform="rotate(-90 12 '
        f'{TOP + PLOT_HEIGHT / 2:.0f})" text-anchor="middle">{escape(unit)}</text>'
    )
    every = max(1, round(count / 12))  # at most about 12 labels under the bars
    for i, label in enumerate(labels):
        x = LEFT + slot * i + (slot - bar) / 2
        y = float(base)
        for n, (name, values) in enumerate(series):
            value = values[i]
            if not value:
                continue
            h = PLOT_HEIGHT * value / top
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[n % len(PALETTE)]}"><title>{escape(label)} · '
                f"{escape(name)}: {value:,}</title></rect>"
            )
        if totals[i]:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle" '
                f'class="total">{totals[i]:,}</text>'
            )
        if i % every == 0:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{base + 16}" text-anchor="middle">'
                f"{escape(label)}</text>"
            )
    for n, (name, _values) in enumerate(series):
        column, row = n % per_row, n // per_row
        lx, ly = LEFT + column * legend_width, base + 36 + 18 * row
        parts.append(
            f'<rect x="{lx}" y="{ly - 10}" width="12" height="12" '
            f'fill="{PALETTE[n % len(PALETTE)]}"/>'
            f'<text x="{lx + 18}" y="{ly}">{escape(name)}</text>'
        )
    if not any(totals):
        parts.append(
            f'<text x="{WIDTH / 2:.0f}" y="{TOP + PLOT_HEIGHT / 2:.0f}" text-anchor="middle">'
            "nothing in this period</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
