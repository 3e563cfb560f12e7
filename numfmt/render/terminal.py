"""Rich renderables for the format layer's results. They lay out numbers; they compute none.

Colour marks the fields (sign red, exponent blue, mantissa green); the ``_`` between fields is
plain text, so the layout survives ``NO_COLOR`` and pipes, where rich drops the colour.
"""

from __future__ import annotations

from typing import cast

from rich.console import Group, JustifyMethod
from rich.table import Table
from rich.text import Text

from numfmt._display import renderer
from numfmt.formats.explain import (
    CodeTable,
    CompareResult,
    FormatInfo,
    FormatList,
    ShowResult,
    hex_code,
)
from numfmt.formats.value import ExactValue, scientific
from numfmt.render.fit import fit
from numfmt.render.showtext import (
    LABEL,
    bit_pieces,
    error_text,
    show_layout,
    value_text,
)


def coloured_bits(result: ShowResult) -> Text:
    """The bits with each field in its colour and ``_`` between fields."""
    return _text(bit_pieces(result), overflow="fold")


def _text(pieces, **kwargs) -> Text:
    text = Text(**kwargs)
    for piece, style in pieces:
        text.append(piece, style=style or None)
    return text


def _info_value(value: object) -> str:
    if value is None:
        return "-"
    return f"{value:.9g}" if isinstance(value, float) else str(value)


@renderer(ShowResult)
def render_show(r: ShowResult) -> Group:
    fmt = r.format
    title_pieces, rows = show_layout(r)
    title = _text(title_pieces)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style=LABEL, no_wrap=True)
    grid.add_column()
    for label, pieces in rows:
        grid.add_row(
            _text(label), _text(pieces, overflow="fold") if label[0][0] == "bits" else _text(pieces)
        )
    parts: list = [title, grid]
    if r.policies:
        policies = Table(title="on overflow, by policy", title_justify="left", box=None)
        for col in ("policy", "code", "stored", "note"):
            policies.add_column(col, style=LABEL if col == "policy" else None)
        for p in r.policies:
            chosen = " (chosen)" if p.policy is r.overflow else ""
            policies.add_row(
                p.policy.value + chosen,
                "-" if p.code is None else hex_code(p.code, fmt),
                Text(value_text(p.stored)),
                Text("refused" if p.error else ""),  # the reason is said once, above
            )
        parts.append(fit(policies, wrap=("note",)))
    return Group(*parts)


@renderer(CompareResult)
def render_compare(c: CompareResult):
    t = Table(title=Text(f"{c.input} in {len(c.rows)} formats"), title_justify="left")
    justify: JustifyMethod
    for col, justify in (
        ("format", "left"),
        ("bits", "left"),
        ("stored", "right"),
        ("abs error", "right"),
        ("rel error", "right"),
        ("what happened", "left"),
    ):
        t.add_column(col, justify=justify)
    for r in c.rows:
        stored = "-" if r.code is None else _compact(cast(ExactValue, r.stored))  # a code's
        t.add_row(
            Text(r.format.name),
            coloured_bits(r),
            Text(stored),
            Text(error_text(r.abs_error, 3)),
            Text(error_text(r.rel_error, 3)),
            Text(r.event if r.code is not None else (r.refusal or r.event)),
        )
    return fit(t, wrap=("what happened",))


def _compact(v: ExactValue) -> str:
    """A stored value in about 12 characters: exact when that fits, else ~ and 10 digits."""
    text = str(v)
    if not v.is_finite or len(text) <= 12:
        return text
    return "~" + scientific(v.fraction, 10)


@renderer(FormatInfo)
def render_info(i: FormatInfo) -> Group:
    title = Text(i.format.name, style="bold")
    if i.aliases:
        title.append(f"   also: {', '.join(i.aliases)}", style=LABEL)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style=LABEL)
    grid.add_column()
    for key, value in i.items:
        grid.add_row(key.replace("_", " "), Text(_info_value(value)))
    return Group(title, grid)


@renderer(CodeTable)
def render_table(c: CodeTable):
    t = Table(title=f"every code of {c.format.name}", title_justify="left")
    for col in ("code", "hex", "bits", "value", "class"):
        t.add_column(col, justify="right" if col in ("code", "value") else "left")
    for code, bits, value, cls in c.rows:
        t.add_row(str(code), hex_code(code, c.format), Text(bits), Text(value_text(value)), cls)
    return fit(t)


@renderer(FormatList)
def render_formats(f: FormatList) -> Group:
    t = Table(title="named formats", title_justify="left")
    for col in ("name", "aliases", "bits", "s+e+m", "max", "smallest", "specials"):
        t.add_column(col, justify="right" if col in ("bits", "max", "smallest") else "left")
    for row in f.to_dict()["formats"]:
        t.add_row(
            Text(row["name"]),
            Text(", ".join(row["aliases"])),
            str(row["bits"]),
            row["layout"].replace(" ", ""),
            f"{row['max']:.5g}",
            f"{row['smallest']:.5g}",
            row["specials"],
        )
    fam = Table(title="formats spelled by a pattern", title_justify="left")
    fam.add_column("pattern")
    fam.add_column("meaning")
    for pattern, meaning in f.families:
        fam.add_row(Text(pattern), Text(meaning))
    return Group(fit(t, wrap=("aliases",)), fit(fam, wrap=("meaning",)))
