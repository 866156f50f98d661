"""The report as Markdown: the same sections, paragraphs and tables as the HTML; each
chart becomes its table of numbers (Markdown has no pictures of its own)."""

from __future__ import annotations

from .document import Block, Chart, Section, Table


def render_markdown(sections: list[Section]) -> str:
    out: list[str] = []
    for section in sections:
        out.append(f"{'#' * section.level} {section.title}\n")
        for block in section.blocks:
            out.append(_block(block))
    return "\n".join(out).rstrip() + "\n"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _block(block: Block) -> str:
    if block.kind == "table":
        assert block.table is not None
        return _table(block.table)
    if block.kind == "chart":
        assert block.chart is not None
        return _chart(block.chart)
    if block.kind == "facts":
        return "\n".join(f"- **{k}:** {_escape(v)}" for k, v in block.facts) + "\n"
    if block.kind == "rule":
        rule, _, text = block.text.partition(": ")
        return f"- **`{rule}`**: {text}\n"
    if block.kind == "warn":
        return f"> **Attention:** {block.text}\n"
    if block.kind == "ok":
        return f"> {block.text}\n"
    if block.kind == "note":
        return f"_{block.text}_\n"
    return f"{block.text}\n"


def _table(table: Table) -> str:
    align = ["---:" if i in table.numeric else "---" for i in range(len(table.headers))]
    lines = [
        "| " + " | ".join(_escape(h) for h in table.headers) + " |",
        "| " + " | ".join(align) + " |",
        *("| " + " | ".join(_escape(v) for v in row) + " |" for row in table.rows),
    ]
    return "\n".join(lines) + "\n"


def _chart(chart: Chart) -> str:
    """A chart's numbers: one row per bar, one column per series (empty: nothing)."""
    if not chart.series:
        return f"_{chart.title}: nothing in this period._\n"
    names = [name for name, _values in chart.series]
    rows = [
        [label, *(f"{values[i]:,}" for _name, values in chart.series)]
        for i, label in enumerate(chart.labels)
    ]
    table = Table(["", *names], rows, numeric=tuple(range(1, len(names) + 1)))
    return f"_{chart.title} (the chart's numbers):_\n\n" + _table(table)
