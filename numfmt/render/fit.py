"""Tables that fit the console: no name, number or bit string is cut short or split.

A rich table too wide for its console narrows its widest columns, and then every column
evenly, cutting what does not fit with an ellipsis (``float8_e…``) or folding a word across two
lines (``1536x57`` / ``6``). :func:`fit` wraps a table and lays it out when the width is
known, in the first of these that fits:

1. as rich would, when every column can be as wide as its widest cell;
2. the columns of prose (named in ``wrap``) narrowed, the widest first, but never below their
   longest word (a cell there wraps between words, never inside one); every other cell (a
   name, ``40.75 dB``, ``2.36 MB``, ``1 + 4 + 3``) stays on one line, whole;
3. the same without the frame (two spaces between columns, no borders);
4. a block per row: the row's first cell (or first few: ``head``) on a line of its own, then
   each other column as ``header value``, as many to a line as fit.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

#: Between two header-value pairs of a row's block, and before each line of its pairs.
_GAP = "   "
_INDENT = "  "


class Fitted:
    """A rich renderable: ``table`` laid out for the width it is printed at (see the module)."""

    def __init__(self, table: Table, wrap: Iterable[str] = (), head: int = 1):
        self.table = table
        self.wrap = frozenset(wrap)
        self.head = head

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        table = self.table
        ranges = _column_ranges(console, options, table, self.wrap)
        if _total(table, [hi for _, hi in ranges]) <= width:
            yield table
            return
        for candidate in (table, _frameless(table)):
            widths = _narrowed(candidate, ranges, width)
            if widths is not None:
                yield _with_widths(candidate, widths)
                return
        yield from _blocks(console, table, width, self.head)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        ranges = _column_ranges(console, options, self.table, self.wrap)
        return Measurement(
            min(_total(self.table, [lo for lo, _ in ranges]), options.max_width),
            min(_total(self.table, [hi for _, hi in ranges]), options.max_width),
        )


def fit(table: Table, wrap: Iterable[str] = (), head: int = 1) -> Fitted:
    """``table``, laid out so that no cell is cut or split at any console width.

    Args:
        table: a rich table (its columns' headers name them).
        wrap: the headers of the columns of prose, whose cells may wrap between words.
        head: how many leading cells name a row (a rank and a name: 2), when each row
            becomes a block of its own.
    """
    return Fitted(table, wrap, head)


def _column_ranges(
    console: Console, options: ConsoleOptions, table: Table, wrap: frozenset[str]
) -> list:
    """Each column's (narrowest, widest) content width: for prose, its longest word and its
    longest cell; for the rest, its longest cell both."""
    ranges = []
    wide = options.update_width(10**6)
    for column in table.columns:
        prose = _plain(column.header) in wrap
        lo = hi = 0
        for i, cell in enumerate([column.header, *column.cells]):
            if i == 0 and not table.show_header:
                continue
            renderable = console.render_str(cell) if isinstance(cell, str) else cell
            m = Measurement.get(console, wide, renderable)
            # a header wraps between its words; a cell only in a column of prose
            lo = max(lo, m.minimum if prose or i == 0 else m.maximum)
            hi = max(hi, m.maximum)
        ranges.append((max(lo, column.min_width or 0), max(hi, column.min_width or 0)))
    return ranges


def _total(table: Table, widths: list[int]) -> int:
    """The table's width with these content widths: padding and borders added."""
    pads = sum(table._get_padding_width(i) for i in range(len(table.columns)))
    return sum(widths) + pads + table._extra_width


def _narrowed(table: Table, ranges: list, width: int) -> list[int] | None:
    """Content widths that fit ``width`` without going below any column's longest word, the
    widest wrapping column narrowed first; None when even those minimums do not fit."""
    widths = [hi for _, hi in ranges]
    if _total(table, [lo for lo, _ in ranges]) > width:
        return None
    excess = _total(table, widths) - width
    while excess > 0:
        i = max((j for j, (lo, _) in enumerate(ranges) if widths[j] > lo), key=lambda j: widths[j])
        widths[i] -= 1
        excess -= 1
    return widths


def _frameless(table: Table) -> Table:
    """The table without borders: two spaces between columns."""
    bare = copy.copy(table)
    bare.columns = [copy.copy(c) for c in table.columns]
    bare.box = None
    bare.show_edge = False
    bare.pad_edge = False
    bare.padding = (0, 1)
    return bare


def _with_widths(table: Table, widths: list[int]) -> Table:
    sized = copy.copy(table)
    sized.columns = [copy.copy(c) for c in table.columns]
    for column, w in zip(sized.columns, widths, strict=True):
        column.width = w
        column.no_wrap = False
        column.overflow = "fold"  # only a word longer than the column folds, and none is
    return sized


def _blocks(console: Console, table: Table, width: int, head: int) -> RenderResult:
    """A block per row: its first cells, then ``header value`` pairs wrapped between pairs."""
    if table.title:
        yield console.render_str(table.title) if isinstance(table.title, str) else table.title
    headers = [_text(console, c.header) for c in table.columns]
    rows = list(zip(*(list(c.cells) for c in table.columns), strict=True))
    for row in rows:
        cells = [_text(console, cell) for cell in row]
        first = Text("  ").join(cells[:head])
        first.stylize("bold")
        yield first
        line = Text(_INDENT)
        for header, value in zip(headers[head:], cells[head:], strict=True):
            if not value.plain.strip():
                continue
            pair = Text.assemble(
                (header.plain, "dim"), " " if header.plain else "", value, overflow="fold"
            )
            if line.cell_len > len(_INDENT) and line.cell_len + len(_GAP) + pair.cell_len > width:
                yield line
                line = Text(_INDENT)
            if line.cell_len > len(_INDENT):
                line.append(_GAP)
            line.append_text(pair)
        if line.cell_len > len(_INDENT):
            yield line


def _plain(cell) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def _text(console: Console, cell) -> Text:
    if isinstance(cell, Text):
        return cell.copy()
    if isinstance(cell, str):
        return console.render_str(cell)
    return Text(str(cell))
