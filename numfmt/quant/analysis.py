"""The numbers behind the plots: error curves, clipping curves, grids, format ranges.

Each function returns a result object (``to_dict()`` for ``--json``, a rich table in the
terminal); ``numfmt.plot`` draws them and computes nothing of its own.

==================  ===========================================================================
error_vs_bits       SQNR (or MSE) of several schemes at 2 .. 8 bits
clipping_curve      MSE against the clip ratio (of the minmax range), with the range each
                    calibration method picks marked on it
grid_view           a tensor's histogram with a scheme's levels, clip range and zero point
format_ranges       every format's range and precision, from fp32 to fp4 and int8, int4
relative_error      a float format's relative rounding error across binades (the sawtooth)
==================  ===========================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from numfmt._display import Displayable, grouped
from numfmt.errors import NumfmtError
from numfmt.formats import FloatFormat, IntFormat, get_format, round_to
from numfmt.quant import _xp, grid
from numfmt.quant.granularity import PerTensor
from numfmt.quant.qparams import as_scheme, choose_qparams, dequantize, quantize
from numfmt.quant.report import error_report
from numfmt.quant.tensor import quantize_tensor

DEFAULT_TEMPLATES = ("int{bits}", "int{bits}/asym", "int{bits}/channel", "int{bits}/group:32")
DEFAULT_METHODS = ("minmax", "percentile", "mse", "entropy", "l2_histogram")
DEFAULT_RANGE_FORMATS = (
    "float32",
    "bfloat16",
    "float16",
    "float8_e5m2",
    "float8_e4m3fn",
    "float6_e3m2fn",
    "float6_e2m3fn",
    "float4_e2m1fn",
    "int8",
    "int4",
)


@dataclass(frozen=True)
class Curves(Displayable):
    """Named series of (x, y) points, with optional marked points."""

    title: str
    x_label: str
    y_label: str
    series: dict[str, tuple[np.ndarray, np.ndarray]]
    marks: dict[str, tuple[float, float]] = field(default_factory=dict)
    log_x: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "x_label": self.x_label,
            "y_label": self.y_label,
            "series": {k: {"x": _list(x), "y": _list(y)} for k, (x, y) in self.series.items()},
            "marks": {k: {"x": float(x), "y": float(y)} for k, (x, y) in self.marks.items()},
        }


def _host(x: Any) -> np.ndarray:
    """The numbers behind a figure live on the host: x read exactly, as numpy."""
    return _xp.to_numpy(_xp.read(x)[0])


def _list(a: np.ndarray) -> list[float]:
    return [float(v) for v in np.asarray(a, dtype=np.float64)]


def error_vs_bits(
    x: Any,
    templates: tuple[str, ...] | list[str] = DEFAULT_TEMPLATES,
    bits: range | list[int] = range(2, 9),
    metric: str = "sqnr_db",
) -> Curves:
    """A metric of each scheme template (``{bits}`` is replaced) at each bit width.

    Examples:
        >>> x = np.random.default_rng(0).standard_normal((32, 64))
        >>> c = error_vs_bits(x, ["int{bits}"], [4, 8])
        >>> [round(v) for v in c.series["intN"][1]]
        [16, 41]
    """
    a = _host(x)
    if metric not in ("sqnr_db", "mse", "rmse", "mae", "cosine", "max_abs_error"):
        raise NumfmtError(f"unknown metric '{metric}'")
    series = {}
    for template in templates:
        if "{bits}" not in template:
            raise NumfmtError(f"a template needs '{{bits}}' where the width goes: '{template}'")
        ys = [getattr(quantize_tensor(a, template.format(bits=b)).report(a), metric) for b in bits]
        series[template.format(bits="N")] = (
            np.asarray(list(bits), dtype=np.float64),
            np.asarray(ys),
        )
    label = {"sqnr_db": "SQNR (dB)"}.get(metric, metric.upper())
    return Curves(f"{label} against bit width, tensor of shape {a.shape}", "bits", label, series)


def clipping_curve(
    x: Any, scheme: Any = "int4", ratios: int = 100, methods: tuple[str, ...] = DEFAULT_METHODS
) -> Curves:
    """MSE when every group keeps a fraction r of its minmax range, for r in (0, 1]; each
    method's choice is marked at its (mean) ratio and the MSE it gives."""
    a = _host(x)
    s = as_scheme(scheme)
    if a.size == 0:
        raise NumfmtError("the tensor is empty: there is nothing to clip")
    if s.scale_rule == "gguf":
        raise NumfmtError(f"{s} is llama.cpp's reference quantizer: it has no clip ratio")
    base = choose_qparams(a, s.with_(method="minmax"))
    g = base.grouping
    r_values = np.arange(1, ratios + 1) / ratios
    mses = []
    for r in r_values:
        mses.append(_mse_at(a, s, g, base.lo * r, base.hi * r, base.tensor_scale))
    marks = {}
    for method in methods:
        qp = choose_qparams(a, s.with_(method=method, method_args=()))
        span = np.maximum(-base.lo, base.hi)
        chosen = np.maximum(-qp.lo, qp.hi)
        ratio = float(np.mean(np.where(span > 0, chosen / np.where(span > 0, span, 1), 1.0)))
        xq = dequantize(quantize(a, qp), qp)
        marks[method] = (ratio, error_report(a, xq).mse)
    return Curves(
        f"MSE against clip ratio, {s}",
        "clip ratio (share of the minmax range kept)",
        "MSE",
        {"MSE at each clip ratio": (r_values, np.asarray(mses))},
        marks,
    )


def _mse_at(a, s, g, lo, hi, tensor_scale) -> float:
    xp = _xp.namespace(a)
    total = 0.0
    for rows, lo_p, hi_p in zip(g.blocks(a), g.split_params(lo), g.split_params(hi), strict=True):
        sc = grid.scales(xp, lo_p, hi_p, s, tensor_scale)
        codes = grid.quantize_rows(xp, rows, sc.scale, sc.zero_point, sc.minimum, s)
        q = grid.dequantize_rows(xp, codes, sc.scale, sc.zero_point, sc.minimum, s)
        total += float(np.square(q - rows).sum())
    return total / a.size


@dataclass(frozen=True)
class GridView(Displayable):
    """A histogram of a tensor (or one of its groups) under a scheme's grid."""

    scheme: str
    counts: np.ndarray
    edges: np.ndarray
    levels: np.ndarray
    lo: float
    hi: float
    zero_point: int | None
    group: int | None
    clipped_below: int = 0
    clipped_above: int = 0
    data_min: float = 0.0
    data_max: float = 0.0
    clip_below: float = 0.0  # values below this are clipped (the error report's definition)
    clip_above: float = 0.0
    groups: int | None = None  # how many groups the scheme makes (None: per tensor)
    widest: bool = False  # the group was chosen as the one with the widest range

    def to_dict(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme,
            "group": self.group,
            "groups": self.groups,
            "widest": self.widest,
            "histogram": {"counts": _list(self.counts), "edges": _list(self.edges)},
            "levels": _list(self.levels),
            "range": [self.lo, self.hi],
            "zero_point": self.zero_point,
            "clipped": {"below": self.clipped_below, "above": self.clipped_above},
            "clip_bounds": [self.clip_below, self.clip_above],
            "data_range": [self.data_min, self.data_max],
        }


def grid_view(x: Any, scheme: Any = "int4", group: int | None = None, bins: int = 200) -> GridView:
    """The values of x (or of one group) with the levels its scheme puts them on.

    For a per-tensor scheme the whole tensor is shown; otherwise ``group`` picks one group
    (default: the one with the widest range). The histogram covers the grid and a fifth of
    its span on either side; values beyond the grid (clipped: more than half a step past the
    last level, as the error report counts them) are counted apart.
    """
    a = _host(x)
    if a.size == 0:
        raise NumfmtError("the tensor is empty: there is nothing to draw")
    qp = choose_qparams(a, scheme)
    g = qp.grouping
    s = qp.scheme
    if isinstance(s.granularity, PerTensor):
        index, values = None, a.reshape(-1)
    else:
        span = (qp.hi - qp.lo).reshape(-1)
        index = int(np.argmax(span)) if group is None else int(group)
        if not 0 <= index < g.num_groups:
            raise NumfmtError(f"group {index} does not exist: there are {g.num_groups}")
        owner = g.expand(np.arange(g.num_groups).reshape(g.scale_shape))
        values = a[owner == index]
    i = index or 0

    def pick(p):
        return None if p is None else float(np.asarray(p).reshape(-1)[i])

    scale = pick(qp.effective_scale)
    zero = None if qp.zero_point is None else int(np.asarray(qp.zero_point).reshape(-1)[i])
    if s.kind == "int" and s.bits > 12:
        raise NumfmtError(f"{s} has {grouped(2**s.bits)} levels: too many to draw")
    levels = np.sort((grid.grid_values(s) - (zero or 0)) * scale + (pick(qp.minimum) or 0.0))
    below, above = (pick(b) for b in grid.clip_bounds(qp))  # the report's own definition
    span = float(levels[-1] - levels[0]) or 1.0
    window = (float(levels[0]) - 0.2 * span, float(levels[-1]) + 0.2 * span)
    count = int(max(10, min(bins, values.size // 4)))
    counts, edges = np.histogram(values, bins=count, range=window)
    lo, hi = pick(qp.lo), pick(qp.hi)
    return GridView(
        str(s),
        counts,
        edges,
        levels,
        lo,
        hi,
        zero,
        index,
        clipped_below=int(np.count_nonzero(values < below)),
        clipped_above=int(np.count_nonzero(values > above)),
        data_min=float(values.min()),
        data_max=float(values.max()),
        clip_below=below,
        clip_above=above,
        groups=None if index is None else int(g.num_groups),
        widest=index is not None and group is None,
    )


@dataclass(frozen=True)
class FormatRanges(Displayable):
    """Range and precision of several formats, for a side-by-side chart."""

    rows: tuple[dict[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"formats": list(self.rows)}


def format_ranges(formats: tuple[str, ...] | list[str] = DEFAULT_RANGE_FORMATS) -> FormatRanges:
    """log2 of each format's smallest positive, smallest normal and largest value, and its
    precision in bits: ``stored_bits`` (the mantissa field: 23 for float32) and
    ``precision_bits`` (with the hidden leading 1: 24). Integers: 1 .. max, with as many
    bits of precision as value bits."""
    rows = []
    for name in formats:
        fmt = get_format(name)
        if isinstance(fmt, FloatFormat):
            rows.append(
                {
                    "format": fmt.name,
                    "bits": fmt.bits,
                    "log2_smallest": float(np.log2(float(fmt.smallest))),
                    "log2_min_normal": float(fmt.emin),
                    "log2_max": float(np.log2(float(fmt.max_value))),
                    "precision_bits": fmt.precision,
                    "stored_bits": fmt.mantissa_bits,
                }
            )
        elif isinstance(fmt, IntFormat):
            rows.append(
                {
                    "format": fmt.name,
                    "bits": fmt.bits,
                    "log2_smallest": 0.0,
                    "log2_min_normal": 0.0,
                    "log2_max": float(np.log2(fmt.max_value)),
                    "precision_bits": fmt.bits - int(fmt.signed),
                    "stored_bits": fmt.bits - int(fmt.signed),
                }
            )
        else:
            raise NumfmtError(f"{fmt.name}: ranges are drawn for floats and integers")
    return FormatRanges(tuple(rows))


def relative_error(fmt: str, binades: int = 4, points: int | None = None) -> Curves:
    """The relative rounding error over a few binades around 1: its envelope, half a ULP
    over x (the sawtooth: 2^-(m+1) at each power of two, half that just below the next), and
    |round(x) - x| / x at sample points (64 per grid step unless ``points`` says).

    Examples:
        >>> c = relative_error("bf16", binades=2)
        >>> float(c.series["half a ULP / x"][1].max()) == 2**-8
        True
    """
    f = get_format(fmt)
    if not isinstance(f, FloatFormat):
        raise NumfmtError(f"the sawtooth is drawn for float formats, not {f.name}")
    lo = max(float(f.min_normal), 2.0 ** -(binades // 2))
    hi = min(float(f.max_value), lo * 2.0**binades)
    count = points or min(200_000, binades * 64 << f.mantissa_bits)
    xs = np.geomspace(lo, hi, count)
    rel = np.abs(round_to(xs, f) - xs) / xs
    exponent = np.floor(np.log2(xs))
    envelope = np.exp2(exponent - f.mantissa_bits - 1) / xs
    return Curves(
        f"relative rounding error of {f.name} ({f.mantissa_bits} mantissa bits)",
        "x",
        "relative error",
        {"|round(x) - x| / x": (xs, rel), "half a ULP / x": (xs, envelope)},
        log_x=True,
    )


__all__ = [
    "Curves",
    "FormatRanges",
    "GridView",
    "clipping_curve",
    "error_vs_bits",
    "format_ranges",
    "grid_view",
    "relative_error",
]
