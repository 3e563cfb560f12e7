"""Rich renderables for lesson 10, inside the matmul (tables; they compute nothing the result
does not hold)."""

from __future__ import annotations

from fractions import Fraction

from rich.console import Group
from rich.table import Table
from rich.text import Text

from numfmt._display import renderer
from numfmt.lessons.matmul import MEASURES, FusedGroup, InsideTheMatmul, ModelRun
from numfmt.render.fit import fit
from numfmt.render.quant import LABEL

#: The Ks the error table shows (the JSON and the figure have them all).
SHOWN_KS = (32, 128, 512, 4096)
#: Each measure in words, for the table's heading.
MEASURE_WORDS = {
    "max_rel": "largest relative error",
    "max_err_over_max_c": "largest error / largest |C|",
}


def _err(x: float) -> str:
    return "0" if x == 0 else f"{x:.2g}"


def _fraction(x: Fraction) -> str:
    """A dyadic fraction as people write it: ``1/32``, ``3/64``, ``256``."""
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


def _curves(r: InsideTheMatmul) -> list:
    shown = [k for k in r.ks if k in SHOWN_KS] or list(r.ks[-3:])
    last = r.ks[-1] if r.ks else None
    t = Table(box=None, header_style="bold", pad_edge=False)
    t.add_column("model")
    t.add_column("inputs")
    for k in shown:
        t.add_column(f"K={k}", justify="right")
    if last is not None:
        t.add_column(f"normal K={last}", justify="right")
    for name in r.models:
        uniform = r.curve(name, "uniform")
        cells = [_err(uniform.at(k)) for k in shown]
        if last is not None:
            cells.append(_err(r.curve(name, "normal").at(last)))
        t.add_row(name, uniform.inputs or "as given", *cells)
    c = r.config
    head = Text(
        f"error against the exact product of the rounded operands, ({c.get('m')} x K) @ "
        f"(K x {c.get('n')}), seed {c.get('seed')}",
        style="bold",
    )
    note = Text(
        f"K=...: uniform [0, 1) operands, the {MEASURE_WORDS[MEASURES['uniform']]}; normal: "
        f"standard normal operands, the {MEASURE_WORDS[MEASURES['normal']]} (near-zero outputs "
        "make relative errors meaningless there); every K its own draw",
        style=LABEL,
    )
    return [head, fit(t), note]


def _example(g: FusedGroup) -> list:
    head = Text(f"one fused group of {g.model}, worked exactly", style="bold")
    intro = Text(
        f"{g.size} products and the accumulator aligned to the largest, 2^{g.exponent}, and cut "
        f"toward zero to {g.bits} fractional bits: multiples of 2^{g.exponent - g.bits} = "
        f"{_fraction(g.unit)}",
        style=LABEL,
    )
    t = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("products", "each", "kept of each", "lost in all"):
        t.add_column(col, justify="left" if col == "products" else "right")
    for term in g.terms:
        t.add_row(
            f"{term.count} x ({term.a:g} x {term.b:g})",
            _fraction(term.product),
            _fraction(term.kept),
            _fraction(term.lost),
        )
    labels = list(g.steps[0].values) if g.steps else []
    s = Table(box=None, header_style="bold", pad_edge=False)
    s.add_column("model")
    for step in g.steps:
        s.add_column(step.label, justify="right")
    s.add_row("exact", *(f"{float(step.exact):.10g}" for step in g.steps), style="bold")
    for label in labels:
        s.add_row(label, *(f"{step.values[label]:.10g}" for step in g.steps))
    note = Text(
        f"the second group's accumulator C holds the first sum (exponent {g.exponent}), so its "
        f"products, each below {_fraction(g.unit)}, are cut to 0; promoted to fp32 after each "
        "group, the partial sum starts again from 0 and they count",
        style=LABEL,
    )
    return [head, intro, fit(t), fit(s), note]


def _model(run: ModelRun) -> list:
    head = Text(
        f"{run.name}: linear layers through each matmul model, {run.tokens} tokens scored "
        f"(windows of {run.context})",
        style="bold",
    )
    t = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("matmul", "operands", "perplexity", "KL", "top-1", "tokens/s"):
        t.add_column(col, justify="left" if col in ("matmul", "operands") else "right")
    for row in run.rows:
        t.add_row(
            row.matmul or "float32 (torch)",
            "float32" if row.matmul is None else (row.scaling or "as given"),
            f"{row.perplexity:.2f}",
            "-" if row.kl is None else f"{row.kl:.4f}",
            "-" if row.top1 is None else f"{row.top1:.1%}",
            f"{row.tokens_per_second:.1f}",
        )
    ks = ", ".join(
        f"K={k} ({v} layer{'s' if v != 1 else ''})" for k, v in sorted(run.layer_ks.items())
    )
    note = Text(
        "KL (nats per token) and top-1 against the float model; operands row: scaled per "
        "token and per output channel into e4m3; attention's own products, norms and the "
        f"embedding stay float32. Its linear layers sum {ks} ({run.seconds:.0f} s)",
        style=LABEL,
    )
    return [head, fit(t), note]


@renderer(InsideTheMatmul)
def render_inside_the_matmul(r: InsideTheMatmul) -> Group:
    parts = [*_curves(r), Text(""), *_example(r.example), Text("")]
    if r.model is not None:
        parts += _model(r.model)
    else:
        parts.append(Text(f"the language model: {r.model_note}", style="bold red"))
    parts.append(Text(f"{r.seconds:.0f} s in all", style=LABEL))
    return Group(*parts)
