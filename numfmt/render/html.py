"""The bits of a value as coloured boxes in a notebook: plain HTML with inline styles.

Each bit is a box; the boxes of one field (sign, exponent, mantissa; or an integer's
two's-complement bits, the sign bit apart) share a colour and a caption with the field's
value and meaning, as float.exposed draws them. Beneath: the formula, the stored value, the
error and the neighbours. Nothing is fetched: no stylesheet, no script, no font.
"""

from __future__ import annotations

from html import escape

from numfmt._display import html_renderer
from numfmt.formats.explain import CompareResult, ShowResult
from numfmt.render.showtext import error_text, neighbour_text, value_text

#: Box colours by field (light, so that the digits stay readable in dark themes too).
COLOURS = {
    "sign": "#f6c1c1",
    "exponent": "#c4dcf7",
    "mantissa": "#c9efc4",
    "integer": "#e8d9f5",
    "fraction": "#c9efc4",
    "value": "#e6e6e6",
}
_BOX = (
    "display:inline-block;width:1.15em;margin:0 1px;padding:2px 0;text-align:center;"
    "font-family:monospace;font-size:1.05em;color:#111;border:1px solid #888;"
    "border-radius:3px;background:{colour}"
)
_FIELD = "display:inline-block;vertical-align:top;margin:0 6px 0 0;text-align:center"
_CAPTION = "font-size:0.75em;color:#555;font-family:sans-serif;line-height:1.3"
_ROW = "margin:2px 0;font-family:sans-serif;font-size:0.9em"


def _fields(r: ShowResult) -> list[tuple[str, str, str]]:
    """(name, bits, caption) of each box group: the format's fields, or an integer's sign
    bit and the rest."""
    if r.format.kind == "int" and not r.fields:
        return [("value", r.bits or "", "")]
    return [(f.name, f.bits, f.meaning) for f in r.fields]


def bits_html(r: ShowResult) -> str:
    """The boxes alone, one group a field, each bit's title its position."""
    if r.code is None:
        return '<span style="font-style:italic">(no code)</span>'
    position = r.format.bits - 1
    groups = []
    for name, bits, meaning in _fields(r):
        boxes = []
        colour = COLOURS.get(name, COLOURS["value"])
        for bit in bits:
            boxes.append(
                f'<span class="nf-bit" title="bit {position}" '
                f'style="{_BOX.format(colour=colour)}">{bit}</span>'
            )
            position -= 1
        caption = escape(name) + (f"<br>{escape(meaning)}" if meaning else "")
        groups.append(
            f'<div class="nf-field" data-field="{escape(name)}" style="{_FIELD}">'
            f"<div>{''.join(boxes)}</div>"
            f'<div style="{_CAPTION}">{caption}</div></div>'
        )
    return f'<div class="nf-bits" style="white-space:nowrap">{"".join(groups)}</div>'


@html_renderer(ShowResult)
def show_html(r: ShowResult) -> str:
    fmt = r.format
    head = escape(fmt.name)
    if r.input is not None:
        head = f"{escape(r.input)} &rarr; {head}"
    parts = [
        f'<div class="nf-show" style="margin:4px 0"><div style="{_ROW}"><b>{head}</b> '
        f'<span style="color:#666">({escape(r.rounding.value)}, overflow '
        f"{escape(r.overflow.value)})</span></div>"
    ]
    if r.code is None:
        parts.append(
            f'<div style="{_ROW};color:#b00020"><b>refused:</b> '
            f"{escape(r.refusal or r.event)}</div></div>"
        )
        return "".join(parts)
    parts.append(bits_html(r))
    rows = [("code", f"{r.hex} = {r.code}")]
    if r.formula:
        rows.append(("value", r.formula))
    rows.append(("stored", value_text(r.stored)))
    if r.exact_input is not None:
        rows.append(("error", f"{error_text(r.abs_error)} (relative {error_text(r.rel_error)})"))
    rows.append(("what happened", f"{r.cls}, {r.event}"))
    rows = [(label, escape(text)) for label, text in rows]
    if r.below is not None or r.above is not None:
        below, above = neighbour_text(r.below, fmt), neighbour_text(r.above, fmt)
        rows.append(("neighbours", f"{escape(below)} &lt; this &lt; {escape(above)}"))
    for label, shown in rows:
        parts.append(
            f'<div style="{_ROW}"><span style="color:#666;display:inline-block;'
            f'min-width:7.5em">{label}</span>{shown}</div>'
        )
    parts.append("</div>")
    return "".join(parts)


@html_renderer(CompareResult)
def compare_html(c: CompareResult) -> str:
    cell = "padding:3px 8px;text-align:left;vertical-align:middle"
    head = "".join(
        f'<th style="{cell}">{h}</th>'
        for h in ("format", "bits", "stored", "abs error", "rel error", "what happened")
    )
    body = []
    for r in c.rows:
        happened = r.event if r.code is not None else (r.refusal or r.event)
        stored = "-" if r.code is None else value_text(r.stored)
        cells = [
            escape(r.format.name),
            bits_html(r),
            escape(stored),
            escape(error_text(r.abs_error, 3)),
            escape(error_text(r.rel_error, 3)),
            escape(happened),
        ]
        body.append("<tr>" + "".join(f'<td style="{cell}">{x}</td>' for x in cells) + "</tr>")
    return (
        f'<div class="nf-compare"><div style="{_ROW}"><b>{escape(c.input)}</b> in '
        f"{len(c.rows)} formats</div>"
        '<table style="border-collapse:collapse;font-family:sans-serif;font-size:0.9em">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def _calc_row(label: str, shown: str) -> str:
    return (
        f'<div style="{_ROW}"><span style="color:#666;display:inline-block;'
        f'min-width:7.5em">{escape(label)}</span>{shown}</div>'
    )


def calculation_html(c) -> str:
    """A calculation in a notebook: each number's bits as boxes, then each step worked
    through, its stored result as boxes."""
    parts = [
        f'<div class="nf-calc" style="margin:4px 0"><div style="{_ROW}"><b>'
        f"{escape(c.expression)}</b> in {escape(c.format.name)} "
        f'<span style="color:#666">({escape(c.rounding.value)})</span></div>'
    ]
    for n in c.numbers:
        parts.append(_calc_row(f"{n.input} →", escape(str(n.stored))))
        parts.append(bits_html(n))
    for i, s in enumerate(c.steps, 1):
        parts.append(f'<div style="{_ROW};margin-top:8px"><b>step {i}: {escape(s.text)}</b></div>')
        if s.alignment:
            lines = "<br>".join(escape(line) for line in s.alignment)
            parts.append(_calc_row("align", f"<code>{lines}</code>"))
        parts.append(_calc_row("exact", escape(s.exact_text)))
        if s.binary is not None:
            parts.append(_calc_row("binary", f"<code>{escape(s.binary.text())}</code>"))
        parts.append(_calc_row("rounding", escape(s.decision)))
        parts.append(_calc_row("stored", f"<b>{escape(str(s.result))}</b>"))
        if s.shown is not None and s.shown.code is not None:
            parts.append(bits_html(s.shown))
        if s.flags:
            parts.append(_calc_row("flags", escape(", ".join(s.flags))))
    parts.append(
        _calc_row("result", f"<b>{escape(str(c.result))}</b>; flags: {escape(str(c.flags))}")
    )
    parts.append("</div>")
    return "".join(parts)
