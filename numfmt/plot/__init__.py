"""Matplotlib figures of the quantization layer (the plot extra).

Every function takes ``ax=None`` (a new figure when None) and returns the Axes; none sets a
backend. The numbers come from ``numfmt.quant.analysis``; these functions only draw them.

==============  ================================================================
error_curve     SQNR (or another metric) against bit width, a line per scheme
clipping        MSE against the clip ratio, each calibration method's choice marked
grid            a tensor's histogram, the grid's levels, the clip range, the zero
ranges          every format's dynamic range (and precision) side by side
rel_error       a float format's relative rounding error across binades
==============  ================================================================
"""

from __future__ import annotations

from typing import Any

import numpy as np

from numfmt._display import grouped
from numfmt.plot import _overlap
from numfmt.quant import analysis

_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]


def _axes(ax):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=(8, 4.8), layout="constrained")
    return ax


def curves(c: analysis.Curves, ax=None, *, ylim: tuple[float, float] | None = None):
    """Draw any :class:`~numfmt.quant.analysis.Curves`: a line per series, marked points.

    Nothing hides another: each series and each mark has a marker shape of its own; a series
    whose markers land on an earlier series' at half its points or more is drawn dashed with
    open markers, over it; a mark that lands on an earlier mark is drawn smaller, over it; and
    where one lies on another throughout, the legend says so ("same as mse" when the numbers
    are equal, "≈ mse" when close). ``ylim`` fixes the y axis before that is judged.
    """
    ax = _axes(ax)
    if c.log_x:
        ax.set_xscale("log", base=2)
    lines = []
    for i, (name, (x, y)) in enumerate(c.series.items()):
        dense = len(x) > 2000 and i == 0  # many samples: a light line under the others
        (line,) = ax.plot(
            x,
            y,
            marker=_overlap.MARKERS[i % len(_overlap.MARKERS)] if len(x) <= 16 else None,
            color=_COLOURS[i % len(_COLOURS)],
            label=name,
            lw=0.5 if dense else 1.8,
            alpha=0.45 if dense else 1.0,
        )
        lines.append(line)
    marks = []
    for i, (name, (mark_x, mark_y)) in enumerate(c.marks.items()):
        marks.append(
            ax.scatter(
                [mark_x],
                [mark_y],
                s=_MARK_SIZE,
                marker=_overlap.MARKERS[i % len(_overlap.MARKERS)],
                zorder=5,
                color=_COLOURS[(i + 1) % len(_COLOURS)],
                edgecolor="black",
                label=name,
            )
        )
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.get_xlim(), ax.get_ylim()  # the limits settle here; the page positions depend on them
    _part_series(ax, c, lines)
    _part_marks(ax, c, marks)
    ax.set_title(c.title)
    ax.set_xlabel(c.x_label)
    ax.set_ylabel(c.y_label)
    ax.grid(True, alpha=0.3)
    legend = ax.legend(fontsize="small")
    for handle in legend.legend_handles:  # every shape full size in the key, however nested
        if hasattr(handle, "set_sizes"):
            handle.set_sizes([_MARK_SIZE * 0.8])
    return ax


#: Area of a mark, in points squared; a mark drawn over another shrinks to 0.45 of it.
_MARK_SIZE = 80.0
_DASHES = ("--", ":", "-.")


def _part_series(ax, c: analysis.Curves, lines) -> None:
    """Dash (and open the markers of) each series that runs over an earlier one."""
    names = list(c.series)
    over: dict[int, int] = {}  # series -> how many series already run over the one it is on
    for j, (x, y) in enumerate(c.series.values()):
        for i in range(j):
            xi, yi = c.series[names[i]]
            if not np.array_equal(xi, x):
                continue
            size = lines[j].get_markersize() if lines[j].get_marker() != "None" else 3.0
            a = _overlap.page_points(ax, xi, yi)
            b = _overlap.page_points(ax, x, y)
            share = _overlap.share_of_points_touching(a, b, size)
            if share < 0.5:
                continue
            depth = over.get(i, 0)
            over[i] = depth + 1
            lines[j].set_linestyle(_DASHES[depth % len(_DASHES)])
            lines[j].set_markerfacecolor("none")
            lines[j].set_markeredgewidth(1.6)
            lines[j].set_zorder(lines[i].get_zorder() + 0.1 * (depth + 1))
            if share == 1.0:
                lines[j].set_label(f"{names[j]} ({_overlap.relation(yi, y)} {names[i]})")
            break


def _part_marks(ax, c: analysis.Curves, marks) -> None:
    """Draw each mark that lands on an earlier one smaller and over it, and say so."""
    if not marks:
        return
    names = list(c.marks)
    points = list(c.marks.values())
    centres = _overlap.page_points(ax, [p[0] for p in points], [p[1] for p in points])
    owners = _overlap.touching(centres, [np.sqrt(_MARK_SIZE)] * len(points))
    depth: dict[int, int] = {}
    for j, owner in enumerate(owners):
        if owner is None:
            continue
        depth[owner] = depth.get(owner, 0) + 1
        marks[j].set_sizes([_MARK_SIZE * 0.45 ** depth[owner]])
        marks[j].set_zorder(5 + depth[owner])
        relation = _overlap.relation(points[owner], points[j])
        marks[j].set_label(f"{names[j]} ({relation} {names[owner]})")


def error_curve(
    x: Any,
    templates=analysis.DEFAULT_TEMPLATES,
    bits=range(2, 9),
    metric: str = "sqnr_db",
    ax=None,
):
    """SQNR (or ``metric``) of each scheme template at each bit width.

    Each step of one bit buys about 6 dB of SQNR on a uniform grid: the lines are straight
    until clipping or the scale overhead bends them.
    """
    c = analysis.error_vs_bits(x, templates, bits, metric)
    ax = curves(c, ax)
    ax.set_xticks(list(bits))
    return ax


def clipping(
    x: Any, scheme: Any = "int4", ratios: int = 100, methods=analysis.DEFAULT_METHODS, ax=None
):
    """MSE against the share of the minmax range kept; the methods' choices marked."""
    c = analysis.clipping_curve(x, scheme, ratios, methods)
    y = c.series["MSE at each clip ratio"][1]
    top = max(float(np.percentile(y, 90)), max((m[1] for m in c.marks.values()), default=0))
    return curves(c, ax, ylim=(0, top * 1.1))


def grid(x: Any, scheme: Any = "int4", group: int | None = None, ax=None):
    """The values' histogram, the grid levels, the chosen range and the zero point."""
    g = analysis.grid_view(x, scheme, group)
    ax = _axes(ax)
    widths = np.diff(g.edges)
    ax.bar(g.edges[:-1], g.counts, width=widths, align="edge", color="#9ecae1", label="values")
    top = g.counts.max() if g.counts.size else 1
    few = len(g.levels) <= 64
    for i, level in enumerate(g.levels):
        ax.axvline(
            level,
            color="#333333",
            lw=0.8 if few else 0.3,
            alpha=0.8,
            label="grid levels" if i == 0 else None,
        )
    lo, hi = g.clip_below, g.clip_above  # half a step past the end levels, as the report counts
    left, right = g.edges[0], g.edges[-1]
    ax.axvspan(left, lo, color="#d62728", alpha=0.12, label="clipped (half a step past the grid)")
    ax.axvspan(hi, right, color="#d62728", alpha=0.12)
    for side, n, extreme, x_text, align in (
        ("below", g.clipped_below, g.data_min, left, "left"),
        ("above", g.clipped_above, g.data_max, right, "right"),
    ):
        if n:
            ax.text(
                x_text,
                top * 0.55,
                f" {grouped(n)} values {side}\n (to {extreme:.3g}) ",
                ha=align,
                va="center",
                fontsize="small",
                color="#a50f15",
            )
    ax.axvline(
        0.0,
        color="#2ca02c",
        lw=2,
        label="zero" if g.zero_point is None else f"zero (code {g.zero_point})",
    )
    ax.set_xlim(left, right)
    ax.set_ylim(0, top * 1.15)
    where = ""
    if g.group is not None:
        where = f", group {g.group} of {g.groups}" + (", the widest" if g.widest else "")
    ax.set_title(f"{g.scheme}{where}: {len(g.levels)} levels over the values")
    ax.set_xlabel("value")
    ax.set_ylabel("count")
    ax.legend(fontsize="small", loc="upper right")
    return ax


def ranges(formats=analysis.DEFAULT_RANGE_FORMATS, ax=None):
    """Each format's range as a bar on a log2 axis, subnormals lighter; its precision in bits
    written in a column of its own right of the axes, where the layout makes room for it (the
    x axis spans the ranges and nothing else)."""
    data = analysis.format_ranges(formats).rows
    ax = _axes(ax)
    rows = list(reversed(data))  # the first format at the top
    for i, r in enumerate(rows):
        ax.barh(
            i,
            r["log2_min_normal"] - r["log2_smallest"],
            left=r["log2_smallest"],
            color="#c6dbef",
            edgecolor="#6baed6",
        )
        ax.barh(i, r["log2_max"] - r["log2_min_normal"], left=r["log2_min_normal"], color="#3182bd")
    ax.set_yticks(range(len(rows)), [f"{r['format']} ({r['bits']})" for r in rows])
    precision = ax.secondary_yaxis("right")
    precision.set_yticks(range(len(rows)), [_precision(r) for r in rows], fontsize="small")
    precision.set_ylabel("precision")
    ax.axvline(0, color="black", lw=0.6)
    ax.set_xlabel("log2 of the magnitude (light: subnormals)")
    ax.set_title("dynamic range of each format")
    lo = min(0.0, *(r["log2_smallest"] for r in data))
    hi = max(0.0, *(r["log2_max"] for r in data))
    pad = 0.03 * (hi - lo or 1.0)
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.grid(True, axis="x", alpha=0.3)
    return ax


def _precision(row: dict) -> str:
    stored, precision = row["stored_bits"], row["precision_bits"]
    if precision == stored:
        return f"{precision} bits"
    return f"{precision} bits: {stored} stored + {precision - stored} hidden"


def rel_error(fmt: str, binades: int = 4, ax=None):
    """The relative error of rounding to a float format: a sawtooth that peaks at 2^-(m+1)
    right after each power of two and halves across the binade."""
    c = analysis.relative_error(fmt, binades)
    return curves(c, ax, ylim=(0, float(c.series["half a ULP / x"][1].max()) * 1.25))


__all__ = ["clipping", "curves", "error_curve", "grid", "ranges", "rel_error"]
