"""Rich renderables for training in fewer bits: an optimizer's statistics and lesson 9's
result (tables; they compute nothing the results do not hold)."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from numfmt._display import grouped, renderer
from numfmt.lessons.training import RUNS, TrainingInFewerBits
from numfmt.nn.training import TrainingStats
from numfmt.render.fit import fit
from numfmt.render.quant import LABEL


def _share(x: float) -> str:
    """A share as a percentage, with two significant digits where it is under 0.1%."""
    if x == 0:
        return "0%"
    return f"{x:.1%}" if x >= 1e-3 else f"{x * 100:.2g}%"


def _count(n: int, total: int) -> str:
    """``1,234 (5.6%)``; a bare ``0`` for none."""
    if n == 0:
        return "0"
    return f"{grouped(n)} ({_share(n / total)})" if total else f"{grouped(n)}"


@renderer(TrainingStats)
def render_stats(s: TrainingStats) -> Group:
    head = Text(f"weights {s.weights}, update {s.update}", style="bold")
    head.append(
        f"; gradients {s.grads or 'float32'}; optimizer state {s.state or 'float32'}", style=LABEL
    )
    t = Table.grid(padding=(0, 2))
    t.add_column(style=LABEL)
    t.add_column(justify="right")
    t.add_row("steps taken", f"{grouped(s.taken)}")
    t.add_row("steps skipped", f"{grouped(s.skipped)}")
    t.add_row("weight updates", f"{grouped(s.updates)}")
    t.add_row("  weight unchanged", _count(s.lost, s.updates))
    t.add_row("nonzero gradients", f"{grouped(s.gradients)}")
    t.add_row("  underflowed to 0", _count(s.underflowed, s.gradients))
    t.add_row("  overflowed", _count(s.overflowed, s.gradients))
    if s.state is not None:
        t.add_row("state flushed to 0", f"{grouped(s.state_underflowed)}")
    return Group(head, t)


def _power(x: float) -> str:
    """A format's limit as people write it: 2^-24, 65504, 3.39e+38."""
    import math

    k = math.log2(x)
    if k == int(k):
        return f"2^{int(k)}"
    return f"{x:.6g}"


@renderer(TrainingInFewerBits)
def render_lesson(r: TrainingInFewerBits) -> Group:
    base = r.run("fp32")
    t = Table(box=None, header_style="bold", pad_edge=False)
    for col, justify in (
        ("run", "left"),
        ("test acc.", "right"),
        ("final loss", "right"),
        ("weight unchanged", "right"),
        ("grads underflowed", "right"),
        ("overflowed", "right"),
        ("skipped", "right"),
        ("scale", "right"),
    ):
        t.add_column(col, justify=justify)  # type: ignore[arg-type]
    for row in r.rows:
        worse = row.accuracy < base.accuracy - 0.005
        t.add_row(
            row.name,
            Text(f"{row.accuracy:.1%}", style="red" if worse else ""),
            f"{row.loss:.4f}",
            f"{row.lost_share:.1%}" if row.updates else "-",
            _count(row.underflowed, row.gradients) if row.grads else "-",
            f"{grouped(row.overflowed)}" if row.grads else "-",
            f"{row.skipped}/{row.steps + row.skipped}",
            "-" if row.final_scale is None else _power(row.final_scale),
        )
    c = r.config
    head = Text(
        f"the digits MLP trained {len(r.rows)} ways ({c.get('optimizer')}, lr {c.get('lr')}, "
        f"{c.get('epochs')} epochs, the same start and batches); test accuracy on "
        f"{c.get('test', '?')} digits",
        style="bold",
    )
    legend = Table.grid(padding=(0, 2))
    legend.add_column(style=LABEL, no_wrap=True)
    legend.add_column(style=LABEL)
    shown = set(r.names)
    for spec in RUNS:
        if spec.name in shown:
            legend.add_row(spec.name, spec.meaning)
    notes = Text(
        "weight unchanged: nonzero updates after which the stored weight was the same (lost "
        "for nearest; for stochastic, a draw that rounded back; for kahan and master, carried "
        "in float32); grads underflowed: nonzero float32 gradients that became 0 in the "
        "gradient format; scale: the loss scale at the end",
        style=LABEL,
    )
    g = Table(box=None, header_style="bold", pad_edge=False)
    for col in (
        "format",
        "smallest",
        "smallest normal",
        "largest",
        "binades",
        "grads below smallest",
        "below normal",
        f"overflow at x{_power(c.get('init_scale', 2.0**16))}",
        "scales that fit",
    ):
        g.add_column(col, justify="left" if col == "format" else "right")
    for fr in r.ranges:
        fits = "none" if fr.fit_low is None else f"2^{fr.fit_low} .. 2^{fr.fit_high}"
        g.add_row(
            fr.format,
            _power(fr.smallest),
            _power(fr.min_normal),
            _power(fr.largest),
            f"{fr.binades:.0f}",
            _share(fr.below_smallest),
            _share(fr.below_normal),
            f"{grouped(fr.overflow_scaled)}",
            fits,
        )
    h = r.histogram
    span = Text("the fp32 run's weight gradients: ", style="bold")
    if h.exponents:
        span.append(
            f"{grouped(h.nonzero)} nonzero (and {grouped(h.zeros)} zeros) from {h.smallest:.3g} to "
            f"{h.largest:.3g}, binary exponents {h.exponents[0]} to {h.exponents[-1]} "
            f"({len(h.exponents)} binades)"
        )
    fit_note = Text(
        "scales that fit: the powers of two that, multiplying the loss, would have kept every "
        f"one of these gradients nonzero and finite in the format ({r.seconds:.0f} s in all)",
        style=LABEL,
    )
    return Group(head, fit(t), legend, notes, Text(""), span, fit(g), fit_note)
