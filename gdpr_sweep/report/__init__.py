"""`gdpr-sweep report`: the data-protection officer's report.

`gather.py` reads everything (the config's rules in words from `schedule.py`, the
outlook per rule from `forecast.py`, the sweeps and requests from `history.py`, holds,
`scan` and `audit verify`); `content.py` turns it into sections once; `html.py` (with
`svg.py`'s charts) and `markdown.py` lay them out.
"""

from __future__ import annotations

from .content import build_content
from .gather import Report, build_report
from .html import render_html
from .markdown import render_markdown

FORMATS = ("html", "md")


def render(report: Report, format_name: str) -> str:
    """The report as a document in `format_name` ("html" or "md")."""
    sections = build_content(report)
    return render_html(sections) if format_name == "html" else render_markdown(sections)


__all__ = ["FORMATS", "Report", "build_report", "render", "render_html", "render_markdown"]
