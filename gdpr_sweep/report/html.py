"""The report as one self-contained HTML file: inline CSS and SVG, no script, no font,
image or style from anywhere (a Content-Security-Policy says so to the browser), and a
print stylesheet so that "Print → PDF" gives a clean document."""

from __future__ import annotations

from html import escape

from .document import Block, Section, Table
from .svg import stacked_bars

CSS = """
:root { color-scheme: light; --ink: #1d2430; --muted: #5b6472; --line: #d5d9e0;
  --ok: #1b7a3d; --warn: #a4370f; --band: #f4f6f9; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans",
  "DejaVu Sans", sans-serif; color: var(--ink); margin: 0 auto; max-width: 1100px;
  padding: 24px 32px 48px; background: #fff; }
h1 { font-size: 26px; margin: 0 0 12px; }
h2 { font-size: 20px; margin: 36px 0 10px; padding-bottom: 4px;
  border-bottom: 2px solid var(--ink); }
h3 { font-size: 16px; margin: 24px 0 8px; }
p { margin: 6px 0 10px; }
.note { color: var(--muted); font-size: 13px; }
.ok, .warn { padding: 8px 12px; border-radius: 4px; margin: 8px 0; }
.ok { background: #e8f5ec; border-left: 4px solid var(--ok); }
.warn { background: #fdeee8; border-left: 4px solid var(--warn); font-weight: 600; }
.rule { margin: 6px 0 8px; padding-left: 12px; border-left: 3px solid var(--line); }
.rule b { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-weight: 600; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px;
  margin: 8px 0 12px; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 14px; font-size: 13px; }
table.wide { font-size: 11.5px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 6px; text-align: left;
  vertical-align: top; }
th { background: var(--band); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
nav { font-size: 13px; margin: 4px 0 16px; }
nav a { margin-right: 12px; color: var(--ink); }
figure { margin: 12px 0 16px; }
figcaption { font-weight: 600; font-size: 13px; }
svg.chart { display: block; max-width: 100%; height: auto; margin: 8px 0; }
svg.chart text { font: 11px system-ui, "DejaVu Sans", sans-serif; fill: var(--ink); }
svg.chart text.total { font-size: 10px; fill: var(--muted); }
svg.chart line.grid { stroke: var(--line); stroke-width: 1; }
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { max-width: none; padding: 0; font-size: 11px; }
  table { font-size: 10px; }
  table.wide { font-size: 8.5px; }
  th, td { padding: 3px 4px; }
  nav { display: none; }
  h2 { break-after: avoid; }
  h3 { break-after: avoid; }
  section.new-page { break-before: page; }
  table, figure, .rule, .ok, .warn { break-inside: avoid; }
  thead { display: table-header-group; }
  .ok, .warn { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  a { color: inherit; text-decoration: none; }
}
"""
#: Nothing may be fetched: no script, no font, no image, no frame, no form target.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'"


def render_html(sections: list[Section]) -> str:
    title = sections[0].title if sections else "Report"
    nav = "".join(
        f'<a href="#{escape(s.anchor)}">{escape(s.title)}</a>'
        for s in sections
        if s.level == 2 and s.anchor
    )
    body = []
    for section in sections:
        body.append(_section(section))
        if section.level == 1:
            body.append(f"<nav>{nav}</nav>")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>\n"
        "<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _section(section: Section) -> str:
    tag = f"h{section.level}"
    anchor = f' id="{escape(section.anchor)}"' if section.anchor else ""
    css = ' class="new-page"' if section.new_page else ""
    blocks = "".join(_block(b) for b in section.blocks)
    return f"<section{css}><{tag}{anchor}>{escape(section.title)}</{tag}>{blocks}</section>"


def _block(block: Block) -> str:
    if block.kind == "table":
        assert block.table is not None
        return _table(block.table)
    if block.kind == "chart":
        assert block.chart is not None
        chart = block.chart
        svg = stacked_bars(chart.title, chart.labels, chart.series)
        return f"<figure><figcaption>{escape(chart.title)}</figcaption>{svg}</figure>"
    if block.kind == "facts":
        items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in block.facts)
        return f'<dl class="facts">{items}</dl>'
    if block.kind == "rule":
        rule, _, text = block.text.partition(": ")
        return f'<p class="rule"><b>{escape(rule)}</b>: {escape(text)}</p>'
    css = "" if block.kind == "p" else f' class="{block.kind}"'
    return f"<p{css}>{escape(block.text)}</p>"


def _table(table: Table) -> str:
    def cell(tag: str, i: int, text: str) -> str:
        css = ' class="num"' if i in table.numeric else ""
        return f"<{tag}{css}>{escape(text)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(table.headers))
    rows = "".join(
        "<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>"
        for row in table.rows
    )
    css = ' class="wide"' if table.wide else ""
    return f"<table{css}><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
