"""Rich renderables for the format layer's results. They lay out numbers; they compute none.

Colour marks the fields (sign red, exponent blue, mantissa green); the ``_`` between fields is
plain text, so the layout survives ``NO_COLOR`` and pipes, where rich drops the colour.
"""

from __future__ import annotations

from fractions import Fraction

from rich.console import Group
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

FIELD_STYLES = {
    "sign": "bold red",
    "exponent": "bold blue",
    "mantissa": "bold green",
    "integer": "bold blue",
    "fraction": "bold green",
    "value": "bold green",
}
LABEL = "dim"
#: Exact decimals longer than this are shown rounded, with a note (``--json`` keeps them all).
MAX_EXACT_DIGITS = 24


def coloured_bits(result: ShowResult) -> Text:
    """The bits with each field in its colour and ``_`` between fields."""
    text = Text(overflow="fold")
    if result.code is None:
        return text.append("(no code)", style="italic")
    if result.format.kind == "int":  # nibbles; the sign bit in red
        first = True
        for ch in result.bits_grouped or "":
            if ch == "_":
                text.append(ch)
                continue
            signed = first and result.format.signed
            text.append(ch, style=FIELD_STYLES["sign" if signed else "value"])
            first = False
        return text
    for i, f in enumerate(result.fields):
        if i:
            text.append("_")
        text.append(f.bits, style=FIELD_STYLES.get(f.name, ""))
    return text


def value_text(v: ExactValue | None, digits: int = 17) -> str:
    """A stored value for people: exact when short, rounded (with ~) when not."""
    if v is None:
        return "-"
    text = str(v)
    length = len(text.replace("-", "").replace(".", "").lstrip("0"))
    if not v.is_finite or length <= MAX_EXACT_DIGITS:
        return text
    if _pow2_text(v.magnitude):  # exact and short: 2^-133
        return ("-" if v.negative else "") + _pow2_text(v.magnitude)
    return "~" + scientific(v.fraction, digits)


def _fraction(v: ExactValue | None) -> str | None:
    if v is None or not v.is_finite:
        return None
    f = v.fraction
    if f.denominator == 1 or f.denominator > 10**12:
        return None
    return f"{f.numerator}/{f.denominator}"


def _error(x: Fraction | None, digits: int = 4) -> str:
    return "-" if x is None else scientific(x, digits)


def _pow2_text(x: Fraction) -> str:
    """'2^k' when x is a power of two, else ''."""
    if x <= 0:
        return ""
    k = x.numerator.bit_length() - 1 if x.denominator == 1 else -(x.denominator.bit_length() - 1)
    return f"2^{k}" if Fraction(2) ** k == x else ""


def _neighbour_text(n, fmt) -> str:
    return "-" if n is None else f"{value_text(n.value)} ({hex_code(n.code, fmt)})"


def _info_value(value: object) -> str:
    if value is None:
        return "-"
    return f"{value:.9g}" if isinstance(value, float) else str(value)


@renderer(ShowResult)
def render_show(r: ShowResult) -> Group:
    fmt = r.format
    title = Text()
    if r.input is not None:
        title.append(r.input, style="bold").append("  ->  ", style=LABEL)
    title.append(fmt.name, style="bold")
    title.append(f"  ({r.rounding.value}, overflow {r.overflow.value})", style=LABEL)

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style=LABEL, no_wrap=True)
    grid.add_column()
    if r.code is None:
        grid.add_row("refused", Text(r.refusal or r.event, style="bold red"))
    else:
        width = max((len(f.bits) for f in r.fields), default=0)
        for _, bits in r.steps:
            width = max(width, len(bits))
        grid.add_row("bits", coloured_bits(r) + Text(f"   {r.hex} = {r.code}", style=LABEL))
        for f in r.fields:
            where = f"bit {f.high}" if f.high == f.low else f"bits {f.high}..{f.low}"
            line = Text(f.bits.ljust(width), style=FIELD_STYLES.get(f.name, ""))
            line.append(f"   {f.meaning}").append(f"   ({where})", style=LABEL)
            grid.add_row(Text(f.name, style=FIELD_STYLES.get(f.name, "")), line)
        for step, bits in r.steps:
            grid.add_row("two's compl.", Text(bits.ljust(width)) + Text(f"   {step}", style=LABEL))
        grid.add_row("formula", Text(r.formula))
        stored = Text(value_text(r.stored), style="bold")
        frac = _fraction(r.stored)
        if frac:
            stored.append(f"   = {frac}", style=LABEL)
        grid.add_row("stored", stored)
        grid.add_row("class", Text(f"{r.cls}, {r.event}"))
        if r.exact_input is not None and r.exact_input.is_finite and r.stored.is_finite:
            err = (
                f"abs {_error(r.abs_error)}   rel {_error(r.rel_error)}   "
                f"{_error(r.ulp_error, 3)} ULP"
            )
            grid.add_row("error", Text(err))
        if r.ulp is not None:
            shown = value_text(ExactValue("finite", False, r.ulp))
            ulp = Text(shown)
            if _pow2_text(r.ulp) and _pow2_text(r.ulp) != shown:
                ulp.append(f"   = {_pow2_text(r.ulp)}", style=LABEL)
            grid.add_row("ULP", ulp)
        if r.below is not None or r.above is not None:
            below, above = _neighbour_text(r.below, fmt), _neighbour_text(r.above, fmt)
            grid.add_row("neighbours", Text(f"{below}  <  {value_text(r.stored)}  <  {above}"))
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
        parts.append(policies)
    return Group(*parts)


@renderer(CompareResult)
def render_compare(c: CompareResult) -> Table:
    t = Table(title=Text(f"{c.input} in {len(c.rows)} formats"), title_justify="left")
    for col, justify in (
        ("format", "left"),
        ("bits", "left"),
        ("stored", "right"),
        ("abs error", "right"),
        ("rel error", "right"),
        ("what happened", "left"),
    ):
        t.add_column(col, justify=justify, no_wrap=col not in ("bits", "what happened"))
    for r in c.rows:
        stored = "-" if r.code is None else _compact(r.stored)
        t.add_row(
            Text(r.format.name),
            coloured_bits(r),
            Text(stored),
            Text(_error(r.abs_error, 3)),
            Text(_error(r.rel_error, 3)),
            Text(r.event if r.code is not None else (r.refusal or r.event)),
        )
    return t


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
def render_table(c: CodeTable) -> Table:
    t = Table(title=f"every code of {c.format.name}", title_justify="left")
    for col in ("code", "hex", "bits", "value", "class"):
        t.add_column(col, justify="right" if col in ("code", "value") else "left")
    for code, bits, value, cls in c.rows:
        t.add_row(str(code), hex_code(code, c.format), Text(bits), Text(value_text(value)), cls)
    return t


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
            row["layout"],
            f"{row['max']:.5g}",
            f"{row['smallest']:.5g}",
            row["specials"],
        )
    fam = Table(title="formats spelled by a pattern", title_justify="left")
    fam.add_column("pattern")
    fam.add_column("meaning")
    for pattern, meaning in f.families:
        fam.add_row(Text(pattern), Text(meaning))
    return Group(t, fam)
