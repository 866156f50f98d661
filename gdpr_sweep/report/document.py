"""The report's document model: sections of paragraphs, facts, tables and charts — what
`content.py` says, and what `html.py` and `markdown.py` lay out."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    numeric: tuple[int, ...] = ()  # columns aligned right
    wide: bool = False  # many columns: a smaller font


@dataclass
class Chart:
    title: str
    labels: list[str]
    series: list[tuple[str, list[int]]]


@dataclass
class Block:
    kind: str  # "p" | "note" | "warn" | "ok" | "rule" | "table" | "chart" | "facts"
    text: str = ""
    table: Table | None = None
    chart: Chart | None = None
    facts: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Section:
    title: str
    level: int  # 1: the report, 2: a part, 3: within a database
    blocks: list[Block] = field(default_factory=list)
    anchor: str = ""
    new_page: bool = False

    def add(self, kind: str, text: str = "", **extra: object) -> Section:
        self.blocks.append(Block(kind, text, **extra))  # type: ignore[arg-type]
        return self


def n(value: int) -> str:
    return f"{value:,}"


def month_label(day: dt.date) -> str:
    return day.strftime("%b %Y")
