"""Views of arithmetic in a format: a summation in several orders, a calculation worked
through step by step."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from numfmt._display import grouped, html_renderer, renderer
from numfmt.arith.calc import Calculation
from numfmt.arith.matmul_error import MatmulError
from numfmt.arith.sums import SumResult
from numfmt.render.fit import fit
from numfmt.render.quant import LABEL


def _g(x: float, digits: int = 8) -> str:
    return f"{x:.{digits}g}"


def _settings(options: dict) -> str:
    """The settings a reader needs to repeat the run, where they differ from the defaults:
    ', overflow saturate, ftz, daz, seed 7, 4 random bits'."""
    parts = []
    if options.get("overflow", "ieee") != "ieee":
        parts.append(f"overflow {options['overflow']}")
    parts += [name for name in ("ftz", "daz") if options.get(name)]
    if "seed" in options:
        parts.append(f"seed {options['seed']}")
    if options.get("random_bits"):
        parts.append(f"{options['random_bits']} random bits")
    return "".join(f", {p}" for p in parts)


@renderer(SumResult)
def render_sum(r: SumResult) -> Group:
    head = Text()
    terms = "1 term" if r.count == 1 else f"{grouped(r.count)} terms"
    head.append(f"{terms} summed in {r.format.name}", style="bold")
    head.append(f", rounding {r.rounding.value}{_settings(r.options)}")
    head.append(f"; exact sum {_g(float(r.exact), 12)}")
    table = Table(box=None, pad_edge=False)
    for name in ("order", "sum", "error", "relative error"):
        table.add_column(name, justify="left" if name == "order" else "right")
    for order, value in r.values.items():
        table.add_row(order, _g(value), _g(r.error(order), 4), _g(r.relative_error(order), 3))
    parts: list = [head, fit(table)]
    if r.stall_index is not None:
        assert r.stall_value is not None  # set with stall_index
        rest = r.count - r.stall_index
        parts.append(
            Text(
                f"the sequential sum stopped at {_g(r.stall_value)}: from term "
                f"{grouped(r.stall_index + 1)} on, none of the last {grouped(rest)} terms "
                "changed it",
                style=LABEL,
            )
        )
    raised = r.flags.raised()
    if raised:
        parts.append(Text(f"flags, all orders together: {r.flags}", style=LABEL))
    return Group(*parts)


@renderer(MatmulError)
def render_matmul_error(r: MatmulError) -> Group:
    head = Text()
    head.append(f"({r.m} x {r.k}) @ ({r.k} x {r.n}), {r.dist} operands", style="bold")
    head.append(f", seed {r.seed}: each model against the exact product of its rounded inputs")
    table = Table(box=None, pad_edge=False)
    for name in ("model", "inputs", "max rel. error", "median rel. error", "max|err| / max|C|"):
        table.add_column(name, justify="left" if name in ("model", "inputs") else "right")
    for row in r.rows:
        table.add_row(
            row.model,
            row.inputs or "as given",
            _g(row.max_rel, 3),
            _g(row.median_rel, 3),
            _g(row.max_err_over_max_c, 3),
        )
    parts: list = [head, fit(table)]
    if r.dist == "normal":
        parts.append(
            Text(
                "with zero-mean operands some outputs are near zero, where any error is a large "
                "relative one: max|err| / max|C| is the steadier measure",
                style=LABEL,
            )
        )
    return Group(*parts)


def _number_line(n) -> Text:
    line = Text("  ")
    line.append(f"{n.input}", style="bold")
    line.append(" -> ")
    line.append(str(n.stored), style="bold")
    line.append(f"   {n.bits_grouped}  {n.hex}", style=LABEL)
    if n.exact_input.is_finite and not n.stored.is_finite:
        line.append("   overflow", style="bold")
    elif n.exact_input.is_finite and n.exact_input.magnitude > n.format.max_value:
        line.append("   overflow (saturated)", style="bold")
    elif n.abs_error:
        line.append("   rounded", style=LABEL)
    return line


def _row(label: str, text: str, style: str = "") -> Text:
    line = Text(f"  {label:<9} ", style=LABEL)
    line.append(text, style=style)
    return line


@renderer(Calculation)
def render_calculation(c: Calculation) -> Group:
    head = Text()
    head.append(c.expression, style="bold")
    head.append(f" in {c.format.name}, rounding {c.rounding.value}{_settings(c.options)}")
    parts: list = [head]
    if c.numbers:
        parts.append(Text("numbers, each put into the format", style=LABEL))
        parts += [_number_line(n) for n in c.numbers]
    for i, s in enumerate(c.steps, 1):
        title = Text(f"step {i}  ", style=LABEL)
        title.append(s.text, style="bold")
        parts.append(title)
        for j, line in enumerate(s.alignment):
            parts.append(_row("align" if j == 0 else "", line))
        parts.append(_row("exact", s.exact_text))
        if s.binary is not None:
            parts.append(_row("binary", s.binary.text()))
        parts.append(_row("rounding", s.decision))
        stored = str(s.result)
        if s.shown is not None and s.shown.bits_grouped:
            stored += f"   {s.shown.bits_grouped}  {s.shown.hex}"
        parts.append(_row("stored", stored, "bold"))
        if s.abs_error:
            err = float(s.abs_error)
            rel = s.rel_error
            rel_text = f" ({float(rel):.3g} relative)" if rel is not None else ""
            parts.append(_row("error", f"{err:.3g}{rel_text}"))
        if s.flags:
            parts.append(_row("flags", ", ".join(s.flags)))
    tail = Text("result ", style=LABEL)
    tail.append(str(c.result), style="bold")
    tail.append(f" in {c.format.name}; flags: {c.flags}")
    parts.append(tail)
    return Group(*parts)


@html_renderer(Calculation)
def render_calculation_html(c: Calculation) -> str:
    from numfmt.render.html import calculation_html

    return calculation_html(c)
