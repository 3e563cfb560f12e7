"""A lesson's key results in a terminal: its tables, one after the other (rich only)."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from numfmt._display import renderer
from numfmt.lessons.summary import LessonSummary
from numfmt.render.quant import LABEL


def cell(value: Any) -> str:
    """A value as a table shows it: integers whole, floats to six significant digits."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


@renderer(LessonSummary)
def render_summary(s: LessonSummary) -> Group:
    parts: list[Any] = [Text(s.title, style="bold"), Text(s.page, style=LABEL)]
    for table in s.tables:
        t = Table(box=None, header_style="bold", pad_edge=False, title_justify="left")
        for i, name in enumerate(table.columns):
            t.add_column(name, justify="left" if i == 0 else "right")
        for row in table.rows:
            t.add_row(*(cell(v) for v in row))
        parts += [Text(""), Text(table.title, style="bold underline"), t]
        if table.note:
            parts.append(Text(table.note, style=LABEL))
    return Group(*parts)
