"""Rich renderables for the lessons' results (tables; they compute nothing)."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from numfmt._display import grouped, renderer
from numfmt.lessons.integer import IntegerWalkthrough, LayerStep
from numfmt.lessons.qat import MEANING, PTQvsQAT
from numfmt.render.fit import fit
from numfmt.render.quant import LABEL

#: How many numbers of each vector the walk shows (--json has them all).
SHOWN = 6


@renderer(PTQvsQAT)
def render_ptq_vs_qat(r: PTQvsQAT) -> Group:
    methods = [m for m in r.methods if m != "float"]
    base = r.accuracy("float")
    t = Table(box=None, header_style="bold", pad_edge=False)
    t.add_column("weights", justify="right")
    for m in methods:
        t.add_column(m, justify="right")
    for b in r.bits:
        cells = []
        for m in methods:
            acc = r.accuracy(m, b)
            style = "red" if acc < base - 0.05 else ""
            cells.append(Text(f"{acc:.1%}", style=style))
        t.add_row(f"int{b}", *cells)
    head = Text(f"test accuracy on {r.config.get('test', '?')} digits; float32: ", style="bold")
    head.append(f"{base:.1%}")
    legend = Table.grid(padding=(0, 2))
    legend.add_column(style=LABEL)
    legend.add_column(style=LABEL)
    for m in methods:
        legend.add_row(m, MEANING[m])
    act = r.config.get("activations")
    note = Text(
        f"weights per output channel, symmetric; activations "
        f"{act + ' per tensor' if act else 'in float'}; QAT: "
        f"{r.config.get('qat_epochs')} epochs from the float weights ({r.seconds:.1f} s in all)",
        style=LABEL,
    )
    return Group(head, fit(t), legend, note)


def _step(s: LayerStep) -> Group:
    title = Text(f"layer {s.layer}: {s.in_features} -> {s.out_features}", style="bold")
    title.append(", then ReLU on the codes" if s.relu else ", the logits", style=LABEL)
    shown = " ".join(str(v) for v in s.input_codes[: 2 * SHOWN])
    more = " ..." if len(s.input_codes) > 2 * SHOWN else ""
    inputs = Text(f"x codes ({len(s.input_codes)}): ")
    inputs.append(shown + more)
    inputs.append(f"   scale {s.input_scale:.4g}, zero {s.input_zero}", style=LABEL)
    t = Table(box=None, header_style=LABEL, pad_edge=False)
    t.add_column("channel", no_wrap=True)
    for c in range(min(SHOWN, s.out_features)):
        t.add_column(str(c), justify="right", no_wrap=True)
    t.add_column("", style=LABEL, no_wrap=True)

    def row(label: str, values: list, fmt: str = "{}") -> None:
        more = f"... {len(values)}" if len(values) > SHOWN else ""
        cells = [fmt.format(v) for v in values[:SHOWN]]
        cells += [""] * (min(SHOWN, s.out_features) - len(cells))
        t.add_row(label, *cells, more)

    row("acc int32", s.accumulators)
    row("  bias int32", s.bias)
    row("M", s.multipliers, "{:.3e}")
    row("  M0", s.m0)
    row("  n", s.shifts)
    row("y codes", s.output_codes)
    row("y stands for", s.dequantized, "{:.3f}")
    row("float net", s.float_values, "{:.3f}")
    gap = Text(
        f"y: scale {s.output_scale:.4g}, zero {s.output_zero}; largest gap from the float "
        f"network: {s.max_error:.3g}",
        style=LABEL,
    )
    return Group(title, inputs, fit(t), gap)


@renderer(IntegerWalkthrough)
def render_walkthrough(w: IntegerWalkthrough) -> Group:
    head = Text(f"test digit #{w.sample}: a {w.label}; ", style="bold")
    head.append(f"float says {w.float_prediction}, integers say {w.integer_prediction}")
    legend = Text(
        "acc = Σ (x - zero_x)·w + b in int32 (w int8 per channel, b at scale s_x·s_w); "
        "M = s_x·s_w/s_y = M0·2^-(31+n); y = clamp(zero_y + round(acc·M), 0, 255), all in "
        "integers; ReLU is y = max(y, zero_y)",
        style=LABEL,
    )
    parts: list = [head, legend, Text("")]
    for s in w.steps:
        parts += [_step(s), Text("")]
    t = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("layer", "largest |acc|", "headroom", "overflowed", "worst case", "requant error"):
        t.add_column(col, justify="right")
    for layer in w.stats:
        bad = layer.overflowed > 0
        t.add_row(
            layer.name,
            f"{grouped(layer.max_accumulator)}",
            Text(f"{layer.headroom_bits:.1f} bits", style="red" if bad else ""),
            Text(f"{layer.overflowed:.1%}", style="red" if bad else ""),
            f"{layer.worst_case_bits} bits",
            f"{layer.requant_error:.3f} codes",
        )
    parts.append(
        Text(f"on the test set, with an int{w.accumulator_bits} accumulator", style="bold")
    )
    parts.append(fit(t))
    line = Text("accuracy: float ", style="bold")
    line.append(f"{w.float_accuracy:.1%}, integer {w.integer_accuracy:.1%}; ")
    line.append(f"the two agree on {w.agreement:.1%} of the digits")
    parts.append(line)
    parts.append(
        Text(
            "headroom: bits to spare below the accumulator's limit; worst case: what the "
            "layer's width could need (every input code 255 from its zero point, every weight "
            "127); requant error: RMS distance of the output codes from the exact product "
            "rounded once",
            style=LABEL,
        )
    )
    return Group(*parts)
