"""Figures of arithmetic in a format (the plot extra): running sums in several orders against
the exact one. Each takes ``ax=None`` and returns the Axes; the numbers come from
``numfmt.arith``'s results."""

from __future__ import annotations

from typing import Any

import numpy as np

from numfmt._display import grouped
from numfmt.plot import _COLOURS, _axes

#: At most this many points per line (evenly spaced terms, the last always kept).
_POINTS = 2000


def running_sums(result: Any, ax=None):
    """Each order's running sum against the number of terms (sequential and Kahan as lines,
    the other orders' final sums as marks at the end), the float64 running sum dashed on top,
    and where the sequential sum stopped growing."""
    from matplotlib.ticker import MaxNLocator

    ax = _axes(ax)
    n = result.count
    keep = np.unique(np.linspace(0, n - 1, min(n, _POINTS)).astype(int))
    terms = keep + 1
    exact = result.running["float64"]
    # dashed and on top: an order that tracks it (Kahan, often) would otherwise hide it
    ax.plot(terms, exact[keep], color="black", lw=1, ls=(0, (4, 3)), zorder=5)
    ax.plot([], [], color="black", lw=1, ls=(0, (4, 3)), label="float64 running sum")
    marks = 0
    for i, (order, value) in enumerate(result.values.items()):
        colour = _COLOURS[i % len(_COLOURS)]
        run = result.running.get(order)
        if run is not None:
            ax.plot(terms, run[keep], color=colour, lw=1.2, label=f"{order}: {value:.6g}")
        else:  # a mark at the end: several orders often agree, so each a shape and size of its own
            shape, size = "os^Dv"[marks % 5], 9 - 1.5 * (marks % 4)
            ax.plot([n], [value], shape, ms=size, color=colour, label=f"{order}: {value:.6g}")
            marks += 1
    if result.stall_index is not None:
        k = result.stall_index
        ax.axvline(k + 1, color="#aa3333", lw=0.8, ls=":")
        low, high = ax.get_ylim()
        near_bottom = result.stall_value - low < 0.12 * (high - low)
        ax.annotate(  # by the flat line, at the right: clear of the lines still moving
            f"stops growing at term {grouped(k + 1)}",
            (n, result.stall_value),
            textcoords="offset points",
            xytext=(0, 6 if near_bottom else -12),
            ha="right",
            fontsize=8,
            color="#aa3333",
        )
    ax.set_xlabel("terms added")
    ax.set_ylabel("running sum")
    ax.set_title(f"{grouped(n)} terms summed in {result.format.name} ({result.rounding.value})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # terms are counted in whole numbers
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    return ax


def matmul_error_curve(result: Any, ax=None):
    """Each model's largest relative error against K (log-log), from
    ``numfmt.arith.matmul_error.matmul_error(..., ks=...)``."""
    ax = _axes(ax)
    if not result.ks:
        raise ValueError("this result has no curve: call matmul_error with ks=")
    shapes = "os^Dv<>"
    for i, (name, errors) in enumerate(result.curve.items()):
        ax.plot(
            result.ks,
            errors,
            marker=shapes[i % len(shapes)],
            color=_COLOURS[i % len(_COLOURS)],
            lw=1.2,
            label=name,
        )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("K (products summed into each output)")
    ax.set_ylabel("largest relative error")
    ax.set_title(
        f"Accumulation error against K: ({result.m} x K) @ (K x {result.n}), {result.dist} operands"
    )
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    return ax
