"""Rich renderables for the model layer's results (tables; they compute nothing)."""

from __future__ import annotations

from rich.console import Group, JustifyMethod
from rich.table import Table
from rich.text import Text

from numfmt._display import grouped, renderer
from numfmt.eval.compare import EncoderComparison, ModelComparison
from numfmt.eval.scoring import Score
from numfmt.eval.sensitivity import Sensitivity
from numfmt.nn.algorithms.model_kl import ClipSearch
from numfmt.nn.report import ModelReport
from numfmt.render.fit import fit
from numfmt.render.memory import size
from numfmt.render.quant import LABEL, number


@renderer(ModelReport)
def render_model_report(r: ModelReport) -> Group:
    t = Table(box=None, header_style="bold", pad_edge=False)
    justify: JustifyMethod
    for col, justify in (
        ("layer", "left"),
        ("shape", "right"),
        ("scheme", "left"),
        ("bits/w", "right"),
        ("before", "right"),
        ("after", "right"),
        ("SQNR", "right"),
        ("rel. error", "right"),
        ("clipped", "right"),
    ):
        t.add_column(col, justify=justify)
    for row in r.layers:
        t.add_row(
            row.name,
            "x".join(str(n) for n in row.shape),
            row.scheme,
            f"{row.bits_per_weight:.3g}",
            size(row.bytes_before),
            size(row.bytes_after),
            number(row.sqnr_db, "{:.1f} dB"),
            f"{row.rel_error:.2%}",
            f"{row.clipped:.3%}",
        )
    total = Text()
    total.append(f"{r.recipe}: ", style="bold")
    total.append(
        f"{len(r.layers)} layers, {grouped(r.quantized_parameters)} weights at "
        f"{r.bits_per_weight:.3g} bits each; model {size(r.bytes_before)} -> "
        f"{size(r.bytes_after)} ({r.ratio:.2f}x smaller) in {r.seconds:.1f} s"
    )
    parts: list = [fit(t), total]
    if r.kept:
        kept = Text("kept in float: ", style=LABEL)
        kept.append("; ".join(f"{name} ({why})" for name, why in r.kept[:8]))
        if len(r.kept) > 8:
            kept.append(f"; and {len(r.kept) - 8} more")
        parts.append(kept)
    if r.search is not None:
        parts.append(render_clip_search(r.search))
    return Group(*parts)


@renderer(Score)
def render_score(s: Score) -> Group:
    t = Table(box=None, header_style="bold", pad_edge=False)
    columns = ["model", "perplexity", "tokens", "tok/s"]
    if s.kl is not None:
        columns[2:2] = ["KL", "top-1"]
    for col in columns:
        t.add_column(col, justify="left" if col == "model" else "right")
    cells = [s.name, f"{s.perplexity:.3f}", f"{grouped(s.tokens)}", f"{s.tokens_per_second:.0f}"]
    if s.kl is not None:
        cells[2:2] = [f"{s.kl:.4f}", f"{s.top1:.1%}"]
    t.add_row(*cells)
    return Group(fit(t))


@renderer(ClipSearch)
def render_clip_search(c: ClipSearch) -> Group:
    t = Table(box=None, header_style="bold", pad_edge=False)
    justify: JustifyMethod
    for col, justify in (("group", "left"), ("layers", "right"), ("factor", "right")):
        t.add_column(col, justify=justify)
    t.add_column("KL after", justify="right")
    for step in c.steps:
        t.add_row(step.group, str(step.layers), f"{step.factor:g}", f"{step.kl:.5f}")
    head = Text("model-KL search: ", style="bold")
    head.append(
        f"factors {', '.join(f'{f:g}' for f in c.factors)} on the output-aware clip ratios, "
        f"per {c.per}, on {grouped(c.tokens)} tokens"
    )
    tail = Text()
    tail.append(
        f"KL to float {c.kl_start:.5f} -> {c.kl_end:.5f} nats/token "
        f"({c.evaluations} forward passes, {c.seconds:.1f} s)"
    )
    return Group(head, fit(t), tail)


def _kl(kl: float | None) -> str:
    """A KL divergence in nats: four decimals, or two digits where that would show 0."""
    if kl is not None and 0 < abs(kl) < 5e-5:
        return f"{kl:.1e}"
    return number(kl, "{:.4f}")


@renderer(ModelComparison)
def render_comparison(c: ModelComparison) -> Group:
    own = any(r.own_text_perplexity is not None for r in c.rows)
    t = Table(box=None, header_style="bold", pad_edge=False)
    columns = ["recipe", "bits/w", "size", "perplexity", "KL", "top-1", "quantize", "tokens/s"]
    for col in [*columns, *(["own-text ppl"] if own else [])]:
        t.add_column(col, justify="left" if col == "recipe" else "right")
    for row in c.rows:
        cells = [
            row.recipe,
            number(row.bits_per_weight, "{:.3g}"),
            size(row.bytes),
            f"{row.perplexity:.3f}",
            _kl(row.kl),
            number(row.top1, "{:.1%}"),
            f"{row.quantize_seconds:.1f} s",
            f"{row.tokens_per_second:.1f}"
            if row.tokens_per_second < 10
            else f"{row.tokens_per_second:.0f}",
        ]
        if own:
            cells.append(number(row.own_text_perplexity, "{:.2f}"))
        t.add_row(*cells)
    head = Text(
        f"{c.model}: {grouped(c.tokens)} tokens scored in windows of {c.context}", style="bold"
    )
    parts: list = [head, fit(t)]
    if any(r.matmul for r in c.rows):
        parts.append(
            Text(
                "recipe @ model: every linear layer's product computed through that matmul "
                "model (numfmt.arith.hardware; FP8 operands scaled per token and per output "
                "channel), the rest in float32; tokens/s is the simulation's.",
                style=LABEL,
            )
        )
    if own:
        parts.append(
            Text(
                "own-text ppl: each model on a text it sampled itself from the prompt. Not "
                "comparable: every model scores its own likely text (a damaged model can look "
                "as good as the original); compare the perplexity column, one text for all.",
                style=LABEL,
            )
        )
    if c.generations:
        parts.append(Text(f"\ngreedy continuations of {c.prompt!r}", style="bold"))
        g = Table.grid(padding=(0, 2))
        g.add_column(style=LABEL)
        g.add_column()
        for recipe, text in c.generations:
            g.add_row(recipe, text)
        parts.append(g)
    return Group(*parts)


@renderer(EncoderComparison)
def render_encoder_comparison(c: EncoderComparison) -> Group:
    t = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("recipe", "bits/w", "size", "mean cosine", "worst cosine", "same neighbour"):
        t.add_column(col, justify="left" if col == "recipe" else "right")
    for row in c.rows:
        t.add_row(
            row.recipe,
            number(row.bits_per_weight, "{:.3g}"),
            size(row.bytes),
            f"{row.mean_cosine:.5f}",
            f"{row.worst_cosine:.5f}",
            f"{row.same_neighbour:.1%}",
        )
    head = Text(
        f"{c.model}: embeddings of {grouped(c.sentences)} sentences, against float", style="bold"
    )
    return Group(head, fit(t))


#: Rows of the sensitivity table shown in a terminal (--json has them all).
SENSITIVITY_ROWS = 20


@renderer(Sensitivity)
def render_sensitivity(r: Sensitivity) -> Group:
    head = Text(f"each layer quantized alone by {r.recipe}, ", style="bold")
    head.append(f"scored on {grouped(r.tokens)} tokens (float perplexity {r.float_perplexity:.3f})")
    t = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("rank", "layer", "shape", "bits/w", "KL", "perplexity", "top-1"):
        t.add_column(col, justify="left" if col == "layer" else "right")
    for i, layer in enumerate(r.layers[:SENSITIVITY_ROWS]):
        t.add_row(
            str(i + 1),
            layer.name,
            "x".join(str(n) for n in layer.shape),
            f"{layer.bits_per_weight:.3g}",
            f"{layer.kl:.5f}",
            f"{layer.perplexity:.3f}",
            f"{layer.top1:.1%}",
        )
    parts: list = [head, fit(t, head=2)]
    if len(r.layers) > SENSITIVITY_ROWS:
        more = len(r.layers) - SENSITIVITY_ROWS
        parts.append(Text(f"... and {more} more layers (--json lists them all)", style=LABEL))
    a = r.allocation
    if a is not None:
        line = Text(f"\nwithin {a.budget:g} bits per weight: ", style="bold")
        line.append(
            f"{len(a.promoted)} layers at {a.high}, {a.bits_per_weight:.3f} bits/w, perplexity "
            f"{a.perplexity:.3f}, KL {a.kl:.4f}; all at {r.recipe}: "
            f"{a.uniform_bits_per_weight:.3f} bits/w, perplexity {a.uniform_perplexity:.3f}, "
            f"KL {a.uniform_kl:.4f}"
        )
        parts.append(line)
        if a.promoted:
            shown = ", ".join(a.promoted[:8]) + (", ..." if len(a.promoted) > 8 else "")
            parts.append(Text(f"at {a.high}: {shown}", style=LABEL))
    return Group(*parts)
