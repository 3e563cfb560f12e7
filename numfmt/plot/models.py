"""Matplotlib figures of the model layer: a layer's weights under each recipe, SQNR layer by
layer, and perplexity against bits per weight (the plot extra).

Each takes ``ax=None`` and returns the Axes; the numbers come from the model layer's results
(``ModelReport``, ``ModelComparison``, ``numfmt.nn.layer_weights``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from numfmt.plot import _COLOURS, _axes


def weight_histogram(
    weights: dict[str, Any], *, bins: int = 200, ax=None, title: str | None = None
):
    """The distribution of one layer's weights, the original (the first entry, filled)
    against each recipe's dequantized values (lines), as densities so that they overlay:
    a grid of few levels shows as steps (one per level, its height the share of weights it
    took over the width it stands for), and what collapses to zero as a spike. ``weights``
    maps a label to an array (numpy or torch)."""
    ax = _axes(ax)
    arrays = {k: _numpy(v) for k, v in weights.items()}
    first = next(iter(arrays.values()))
    lo, hi = np.percentile(first, [0.01, 99.99])
    edges = np.linspace(lo, hi, bins + 1)
    for i, (label, values) in enumerate(arrays.items()):
        if i == 0:
            ax.hist(values, edges, density=True, color="#c8c8c8", label=label)
            continue
        colour = _COLOURS[(i - 1) % len(_COLOURS)]
        levels, counts = np.unique(values, return_counts=True)
        if 2 <= levels.size <= 1024:  # one grid for the whole tensor: a step per level
            width = np.gradient(levels)
            ax.step(
                levels,
                counts / (values.size * width),
                where="mid",
                lw=1.3,
                color=colour,
                label=f"{label} ({levels.size} levels)",
            )
        else:  # a grid per group or channel: as a histogram
            ax.hist(values, edges, density=True, histtype="step", lw=1.3, color=colour, label=label)
    ax.set_xlim(lo, hi)
    ax.set_yscale("log")
    ax.set_xlabel("weight value")
    ax.set_ylabel("density (log)")
    ax.set_title(title or "weights, original and quantized")
    ax.legend(fontsize=8)
    return ax


def sqnr_by_layer(reports: dict[str, Any], ax=None):
    """SQNR of each quantized layer, in the model's order, a line per recipe
    (``{label: ModelReport}``): which layers a recipe hurts most. Recipes that quantize the
    weights alike (int8/channel and the W8A8 recipes built on it) share one line and one
    label, so that none hides behind another."""
    ax = _axes(ax)
    names: list[str] = []
    lines: dict[tuple, list[str]] = {}
    for label, report in reports.items():
        rows = list(report.layers)
        if not names:
            names = [r.name for r in rows]
        y = tuple(float(r.sqnr_db) if np.isfinite(r.sqnr_db) else np.nan for r in rows)
        lines.setdefault(y, []).append(label)
    for i, (y, labels) in enumerate(lines.items()):
        ax.plot(
            np.arange(len(y)),
            y,
            marker="." if len(y) > 30 else "o",
            lw=1.2,
            color=_COLOURS[i % len(_COLOURS)],
            label=", ".join(labels),
        )
    step = max(1, len(names) // 12)
    ax.set_xticks(np.arange(0, len(names), step))
    ax.set_xticklabels([_short(n) for n in names[::step]], rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("SQNR (dB)")
    ax.set_title("signal to quantization noise, layer by layer")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def pareto(comparison: Any, ax=None):
    """Perplexity against storage bits per weight, a point per recipe (the float model as a
    line), the points that no other beats in both joined: the trade-off to choose from."""
    ax = _axes(ax)
    rows = [r for r in comparison.rows if r.bits_per_weight is not None]
    ref = next((r for r in comparison.rows if r.bits_per_weight is None), None)
    x = np.array([r.bits_per_weight for r in rows])
    y = np.array([r.perplexity for r in rows])
    ax.scatter(x, y, s=40, color=_COLOURS[0], zorder=3)
    right = x.min() + 0.85 * (x.max() - x.min()) if len(x) > 1 else np.inf
    for i, lift in _stacked_labels(x, np.log(y)):
        left_of = x[i] > right  # near the right edge: the label goes to the point's left
        ax.annotate(
            rows[i].recipe,
            (x[i], y[i]),
            fontsize=7,
            xytext=(-6 if left_of else 6, 3 + lift),
            textcoords="offset points",
            ha="right" if left_of else "left",
            arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "grey"} if lift else None,
        )
    order = np.argsort(x)
    front, best = [], np.inf
    for i in order:
        if y[i] < best:
            front.append(i)
            best = y[i]
    ax.plot(x[front], y[front], color=_COLOURS[1], lw=1.2, label="best at its size")
    if ref is not None:
        ax.axhline(
            ref.perplexity,
            color="black",
            ls="--",
            lw=1,
            label=f"{ref.recipe}: {ref.perplexity:.2f}",
        )
    ax.set_yscale("log")
    from matplotlib.ticker import FuncFormatter

    plain = FuncFormatter(lambda v, _: f"{v:g}")
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain)
    ax.tick_params(axis="y", which="minor", labelsize=7)
    ax.set_xlabel("storage bits per weight (scales included)")
    ax.set_ylabel("perplexity (log)")
    ax.set_title(f"{comparison.model}: perplexity against size")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return ax


def _stacked_labels(x: np.ndarray, y: np.ndarray, near: float = 0.04, step: float = 10.0):
    """(index, points to lift its label) for each point: points that lie close together
    (within ``near`` of each axis' span) get their labels stacked upwards, lowest first."""
    span = lambda v: float(v.max() - v.min()) or 1.0  # noqa: E731
    nx, ny = (x - x.min()) / span(x), (y - y.min()) / span(y)
    out: list[tuple[int, float]] = []
    placed: list[tuple[int, float]] = []
    for i in np.argsort(ny, kind="stable"):
        lifts = [
            lift for j, lift in placed if abs(nx[j] - nx[i]) < near and abs(ny[j] - ny[i]) < near
        ]
        lift = max(lifts) + step if lifts else 0.0
        placed.append((i, lift))
        out.append((int(i), lift))
    return out


def _numpy(a: Any) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().to("cpu").double().numpy()
    return np.asarray(a, dtype=np.float64).reshape(-1)


def _short(name: str) -> str:
    return name.replace("model.layers.", "").replace("self_attn.", "").replace("mlp.", "")


def sensitivity_bars(result: Any, *, top: int = 30, ax=None):
    """The KL divergence each layer causes when quantized alone, the worst ``top`` layers as
    horizontal bars (the worst at the top); layers moved to higher precision by an
    allocation are drawn in another colour."""
    ax = _axes(ax)
    layers = list(result.layers[:top])
    promoted = set(result.allocation.promoted) if result.allocation is not None else set()
    names = [layer.name for layer in layers][::-1]
    values = [layer.kl for layer in layers][::-1]
    colours = [_COLOURS[1] if n in promoted else _COLOURS[0] for n in names]
    ax.barh(range(len(names)), values, color=colours)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_xlabel("KL divergence from float, nats per token (this layer alone quantized)")
    title = f"layer sensitivity under {result.recipe}"
    if promoted:
        title += f" (red: moved to {result.allocation.high})"
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    return ax
