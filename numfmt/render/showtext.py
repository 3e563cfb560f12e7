"""What ``show`` says, as styled pieces of text, without rich: the one layout that the rich
view (``terminal.render_show``) and the plain text of pipes (:func:`plain_show`) both draw.

A piece is ``(text, style)``; a row is a label and its pieces. The plain text is what rich
prints in a pipe (labels padded to one column, two spaces, no colour), so that ``numfmt
show`` in a pipe needs no rich at all; a test holds the two to the same characters.
"""

from __future__ import annotations

from fractions import Fraction

from numfmt.formats.explain import ShowResult, hex_code
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

Piece = tuple[str, str]


def value_text(v: ExactValue | None, digits: int = 17) -> str:
    """A stored value for people: exact when short, rounded (with ~) when not."""
    if v is None:
        return "-"
    text = str(v)
    length = len(text.replace("-", "").replace(".", "").lstrip("0"))
    if not v.is_finite or length <= MAX_EXACT_DIGITS:
        return text
    if pow2_text(v.magnitude):  # exact and short: 2^-133
        return ("-" if v.negative else "") + pow2_text(v.magnitude)
    return "~" + scientific(v.fraction, digits)


def fraction_of(v: ExactValue | None) -> str | None:
    if v is None or not v.is_finite:
        return None
    f = v.fraction
    if f.denominator == 1 or f.denominator > 10**12:
        return None
    return f"{f.numerator}/{f.denominator}"


def error_text(x: Fraction | None, digits: int = 4) -> str:
    return "-" if x is None else scientific(x, digits)


def pow2_text(x: Fraction) -> str:
    """'2^k' when x is a power of two, else ''."""
    if x <= 0:
        return ""
    k = x.numerator.bit_length() - 1 if x.denominator == 1 else -(x.denominator.bit_length() - 1)
    return f"2^{k}" if Fraction(2) ** k == x else ""


def neighbour_text(n, fmt) -> str:
    return "-" if n is None else f"{value_text(n.value)} ({hex_code(n.code, fmt)})"


def bit_pieces(result) -> list[Piece]:
    """The bits with each field in its colour and ``_`` between fields."""
    if result.code is None:
        return [("(no code)", "italic")]
    pieces: list[Piece] = []
    if result.format.kind == "int":  # nibbles; the sign bit in red
        first = True
        for ch in result.bits_grouped or "":
            if ch == "_":
                pieces.append((ch, ""))
                continue
            signed = first and result.format.signed
            pieces.append((ch, FIELD_STYLES["sign" if signed else "value"]))
            first = False
        return pieces
    for i, f in enumerate(result.fields):
        if i:
            pieces.append(("_", ""))
        pieces.append((f.bits, FIELD_STYLES.get(f.name, "")))
    return pieces


def show_layout(r: ShowResult) -> tuple[list[Piece], list[tuple[list[Piece], list[Piece]]]]:
    """(title pieces, rows) of a ShowResult; the policies table is apart (``r.policies``)."""
    fmt = r.format
    title: list[Piece] = []
    if r.input is not None:
        title += [(r.input, "bold"), ("  ->  ", LABEL)]
    title += [(fmt.name, "bold"), (f"  ({r.rounding.value}, overflow {r.overflow.value})", LABEL)]
    rows: list[tuple[list[Piece], list[Piece]]] = []

    def row(label: str, pieces: list[Piece], style: str = LABEL) -> None:
        rows.append(([(label, style)], pieces))

    if r.code is None:
        row("refused", [(r.refusal or r.event, "bold red")])
        return title, rows
    assert r.stored is not None  # a code has its value
    width = max((len(f.bits) for f in r.fields), default=0)
    for _, bits in r.steps:
        width = max(width, len(bits))
    row("bits", [*bit_pieces(r), (f"   {r.hex} = {r.code}", LABEL)])
    for f in r.fields:
        where = f"bit {f.high}" if f.high == f.low else f"bits {f.high}..{f.low}"
        style = FIELD_STYLES.get(f.name, "")
        row(
            f.name,
            [(f.bits.ljust(width), style), (f"   {f.meaning}", ""), (f"   ({where})", LABEL)],
            style,
        )
    for step, bits in r.steps:
        row("two's compl.", [(bits.ljust(width), ""), (f"   {step}", LABEL)])
    row("formula", [(r.formula, "")])
    stored = [(value_text(r.stored), "bold")]
    frac = fraction_of(r.stored)
    if frac:
        stored.append((f"   = {frac}", LABEL))
    row("stored", stored)
    row("class", [(f"{r.cls}, {r.event}", "")])
    if r.exact_input is not None and r.exact_input.is_finite and r.stored.is_finite:
        err = (
            f"abs {error_text(r.abs_error)}   rel {error_text(r.rel_error)}   "
            f"{error_text(r.ulp_error, 3)} ULP"
        )
        row("error", [(err, "")])
    if r.ulp is not None:
        shown = value_text(ExactValue("finite", False, r.ulp))
        ulp = [(shown, "")]
        if pow2_text(r.ulp) and pow2_text(r.ulp) != shown:
            ulp.append((f"   = {pow2_text(r.ulp)}", LABEL))
        row("ULP", ulp)
    if r.below is not None or r.above is not None:
        below, above = neighbour_text(r.below, fmt), neighbour_text(r.above, fmt)
        row("neighbours", [(f"{below}  <  {value_text(r.stored)}  <  {above}", "")])
    return title, rows


def plain_show(r: ShowResult, width: int = 120) -> str | None:
    """The text rich prints for ``show`` in a pipe, or None where rich would lay it out
    differently (a line wider than ``width``, which it wraps; the policies table)."""
    if r.policies:
        return None
    title, rows = show_layout(r)
    labels = ["".join(t for t, _ in label) for label, _ in rows]
    column = max((len(label) for label in labels), default=0)
    lines = ["".join(t for t, _ in title)]
    for label, (_, pieces) in zip(labels, rows, strict=True):
        lines.append((label.ljust(column) + "  " + "".join(t for t, _ in pieces)).rstrip())
    if any(len(line) > width or "\n" in line for line in lines):
        return None
    return "\n".join(line.rstrip() for line in lines)
