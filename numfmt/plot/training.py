"""Matplotlib figures of training in fewer bits (lesson 9; the plot extra): the runs' training
curves, and the float32 run's gradients against fp16's and bf16's ranges. Each takes
``ax=None`` and returns the Axes; the numbers come from ``numfmt.lessons.training``'s result.
"""

from __future__ import annotations

import math
from typing import Any

from numfmt.plot import _COLOURS, _axes

#: Each run's line: colour and style (bf16 weights solid, mixed precision dashed).
_STYLES = {
    "fp32": ("#000000", "-"),
    "bf16-nearest": (_COLOURS[1], "-"),
    "bf16-stochastic": (_COLOURS[0], "-"),
    "bf16-kahan": (_COLOURS[2], "-"),
    "bf16-master": (_COLOURS[3], "-"),
    "mixed-fp16": (_COLOURS[4], "--"),
    "mixed-fp16-scaled": (_COLOURS[5], "--"),
    "mixed-bf16": (_COLOURS[6], "--"),
}


def loss_curves(result: Any, ax=None, *, metric: str = "loss"):
    """Mean training loss (or test ``accuracy``) per epoch, a line per run: bf16 weights
    solid, mixed precision dashed, float32 black."""
    if metric not in ("accuracy", "loss"):
        from numfmt.errors import NumfmtError

        raise NumfmtError(f"metric is 'accuracy' or 'loss', not {metric!r}")
    ax = _axes(ax)
    column = 1 if metric == "accuracy" else 0
    for row in result.rows:
        colour, line = _STYLES.get(row.name, ("#888888", ":"))
        points = [p[column] for p in row.curve]
        ax.plot(
            range(1, len(points) + 1),
            points,
            line,
            color=colour,
            lw=2.2 if row.name == "fp32" else 1.4,
            label=row.name,
            zorder=3 if row.name in ("fp32", "bf16-nearest") else 2,
        )
    ax.set_xlabel("epoch")
    if metric == "accuracy":
        from matplotlib.ticker import PercentFormatter

        ax.set_ylabel("test accuracy")
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    else:
        ax.set_ylabel("mean training loss")
        ax.set_yscale("log")
    ax.set_title("the digits MLP in fewer bits: training curves")
    ax.legend(fontsize=8, ncol=2)
    ax.grid(alpha=0.3, which="both")
    return ax


def gradient_histogram(result: Any, ax=None, *, scale: float | None = None):
    """The float32 run's nonzero weight gradients by binary exponent (bars), and the same
    gradients times the loss scale (outline; by default the scaled fp16 run's last scale, else
    2^16), against fp16's range: its smallest subnormal 2^-24, smallest normal 2^-14 and
    largest value 65504. bf16's range (2^-133 to 3.4e38) lies beyond both edges."""
    ax = _axes(ax)
    h = result.histogram
    if scale is None:
        scaled = [r for r in result.rows if r.final_scale is not None]
        scale = scaled[0].final_scale if scaled else result.config.get("init_scale", 2.0**16)
    shift = round(math.log2(scale))
    fp16 = result.range("fp16")
    bf16 = result.range("bf16")
    total = h.nonzero or 1
    shares = [c / total for c in h.counts]
    ax.bar(
        h.exponents,
        shares,
        width=1.0,
        align="edge",
        color="#9ecae1",
        edgecolor="#6baed6",
        label="fp32 gradients",
    )
    ax.stairs(
        shares,
        [e + shift for e in [*h.exponents, h.exponents[-1] + 1]] if h.exponents else [0],
        color=_COLOURS[4],
        lw=1.6,
        label=f"the same times the loss scale 2^{shift}",
    )
    low = math.log2(fp16.smallest)
    ax.axvspan(low - 40, low, color=_COLOURS[1], alpha=0.10, label=None)
    ax.axvline(low, color=_COLOURS[1], lw=1.8, label=f"fp16 smallest subnormal 2^{low:.0f}")
    ax.axvline(
        math.log2(fp16.min_normal),
        color=_COLOURS[1],
        lw=1.0,
        ls="--",
        label=f"fp16 smallest normal 2^{math.log2(fp16.min_normal):.0f}",
    )
    top = math.log2(fp16.largest)
    ax.axvspan(top, top + 40, color=_COLOURS[1], alpha=0.10)
    ax.axvline(top, color=_COLOURS[1], lw=1.8, ls=":", label="fp16 largest (65504)")
    ends = [*h.exponents, *(e + shift for e in h.exponents)] or [0]
    ax.set_xlim(min(min(ends), low) - 3, max(max(ends) + 1, top) + 3)
    ax.set_yscale("log")  # the tail below 2^-24 is a few in ten thousand
    peak = max(shares, default=1.0)
    ax.set_ylim(0.5 / total, peak * 3)
    ax.text(
        low - 0.5,
        peak,
        f"{fp16.below_smallest:.3%} of the\nfp32 gradients lie\nbelow 2^{low:.0f}, where\n"
        "fp16 has only 0",
        ha="right",
        va="top",
        fontsize=8,
        color="#a50f15",
    )
    ax.set_xlabel("binary exponent of |gradient| (log2)")
    ax.set_ylabel("share of nonzero gradients")
    ax.set_title(
        "weight gradients against fp16's range\n"
        f"(bf16's, 2^{math.log2(bf16.smallest):.0f} to {bf16.largest:.2g}, lies off both edges)",
        fontsize=10,
    )
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3)
    ax.grid(alpha=0.3, axis="y")
    return ax


__all__ = ["gradient_histogram", "loss_curves"]
