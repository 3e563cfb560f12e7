"""A lesson's key results in a terminal: its tables, one after the other (rich only)."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from numfmt._display import grouped, renderer
from numfmt.lessons.summary import LessonSummary
from numfmt.render.fit import fit
from numfmt.render.quant import LABEL


def cell(value: Any) -> str:
    """A value as a table shows it: integers whole, from five digits grouped by threes
    (65 536; beyond 10^12, as a power of two where they are one, give or take one: 2^64 - 1),
    floats to five significant digits (--json has them all)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.5g}"
    if isinstance(value, int) and abs(value) >= 10**12:
        return _power_of_two(value) or grouped(value)
    if isinstance(value, int) and abs(value) >= 10**4:
        return grouped(value)
    return str(value)


def _power_of_two(value: int) -> str | None:
    sign, n = ("-", -value) if value < 0 else ("", value)
    for shift, text in ((0, ""), (1, " - 1"), (-1, " + 1")):
        k = (n + shift).bit_length() - 1
        if n + shift == 1 << k:
            return f"{sign}2^{k}{text}" if not (sign and text) else None
    return None


@renderer(LessonSummary)
def render_summary(s: LessonSummary) -> Group:
    parts: list[Any] = [Text(s.title, style="bold"), Text(s.page, style=LABEL)]
    for table in s.tables:
        t = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 1))
        for i, name in enumerate(table.columns):
            t.add_column(name, justify="left" if i == 0 else "right")
        for row in table.rows:
            t.add_row(*(cell(v) for v in row))
        parts += [Text(""), Text(table.title, style="bold underline"), fit(t)]
        if table.note:
            parts.append(Text(table.note, style=LABEL))
    return Group(*parts)
