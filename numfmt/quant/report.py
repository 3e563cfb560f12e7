"""Error analysis: what quantizing a tensor cost, in numbers, per tensor and per group.

==================  =======================================================================
mse, rmse, mae      mean square / root mean square / mean absolute error
max_abs_error       the worst element
sqnr_db             10 log10(sum x^2 / sum (x - xq)^2): signal to quantization noise (inf when
                    there is no noise)
cosine              cosine similarity of x and xq (1 for two zero tensors)
clipped_fraction    the share of elements outside the grid's range (they were clipped)
clip_share          the share of the squared error that comes from clipped elements; the rest
                    (rounding_share) comes from rounding inside the range
==================  =======================================================================

An element is clipped when its code would lie beyond the end of its group's grid: when it is
more than half a step (the grid's last gap) beyond the last level. With qparams the grid is
known; without, the levels are read off xq (a clipped element lands on the last level, so the
extreme quantized values are the grid's ends whenever anything was clipped).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from numfmt._display import Displayable
from numfmt.errors import NumfmtError
from numfmt.quant import grid
from numfmt.quant.granularity import Grouping, PerTensor
from numfmt.quant.qparams import QParams, as_array
from numfmt.quant.scheme import Mapping, QuantScheme

METRICS = (
    "mse",
    "rmse",
    "mae",
    "max_abs_error",
    "sqnr_db",
    "cosine",
    "clipped_fraction",
    "clip_share",
    "rounding_share",
)


@dataclass(frozen=True)
class ErrorReport(Displayable):
    """Error metrics of one quantized tensor (and per group, where the scheme has groups)."""

    n: int
    mse: float
    mae: float
    max_abs_error: float
    sqnr_db: float
    cosine: float
    clipped_fraction: float
    clip_share: float
    scheme: str | None = None
    bits_per_value: float | None = None
    per_group: dict[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)

    @property
    def rmse(self) -> float:
        return math.sqrt(self.mse)

    @property
    def rounding_share(self) -> float:
        return 1.0 - self.clip_share if self.mse > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = {"scheme": self.scheme, "n": self.n, "bits_per_value": self.bits_per_value}
        d.update({m: getattr(self, m) for m in METRICS})
        if self.per_group:
            d["per_group"] = {k: _spread(v) for k, v in self.per_group.items()}
        return d


def _spread(a: np.ndarray) -> dict[str, float]:
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    if a.size == 0:
        return {"groups": 0, "min": 0.0, "median": 0.0, "max": 0.0}
    return {
        "groups": int(a.size),
        "min": float(a.min()),
        "median": float(np.median(a)),
        "max": float(a.max()),
    }


def error_report(
    x: Any,
    xq: Any,
    *,
    qparams: QParams | None = None,
    grouping: Grouping | None = None,
) -> ErrorReport:
    """Compare a tensor with its quantized version.

    Args:
        x: the original values.
        xq: the dequantized values, same shape.
        qparams: the parameters that made xq (gives the exact range and per-group figures).
        grouping: without qparams, the groups to report per (default: the whole tensor).

    Example:
        >>> r = error_report([0.9, 2.1, 3.05, 9.0], [1.0, 2.0, 3.0, 3.0])
        >>> round(r.mse, 4), r.clipped_fraction
        (9.0056, 0.25)
    """
    a, _ = as_array(x)
    b, _ = as_array(xq)
    if a.shape != b.shape:
        raise NumfmtError(f"x has shape {a.shape} but xq has {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise NumfmtError("error_report needs finite values: x or xq holds NaN or inf")
    g = qparams.grouping if qparams is not None else grouping or Grouping(a.shape, PerTensor())
    a64 = a.astype(np.float64, copy=False)
    err = b.astype(np.float64, copy=False) - a64
    lo, hi = _representable(qparams, g, b)
    clipped = (a64 < g.expand(lo)) | (a64 > g.expand(hi)) if a.size else np.zeros(a.shape, bool)
    n = a.size
    sq = err * err
    total = float(sq.sum())
    signal = float(np.square(a64).sum())
    report = ErrorReport(
        n=n,
        mse=total / n if n else 0.0,
        mae=float(np.abs(err).mean()) if n else 0.0,
        max_abs_error=float(np.abs(err).max()) if n else 0.0,
        sqnr_db=_sqnr(signal, total),
        cosine=_cosine(a64, b.astype(np.float64, copy=False)),
        clipped_fraction=float(clipped.mean()) if n else 0.0,
        clip_share=float(sq[clipped].sum()) / total if total > 0 else 0.0,
        scheme=None if qparams is None else str(qparams.scheme),
        per_group=_per_group(g, a64, sq, clipped) if g.num_groups > 1 else {},
    )
    return report


def _representable(qparams: QParams | None, g: Grouping, xq: np.ndarray):
    """Per-group bounds beyond which an element is clipped: the grid's first and last level,
    each pushed out by half of the gap next to it (scale layout)."""
    if qparams is None:
        bounds = [_bounds_from_levels(rows) for rows in g.blocks(xq)]
        if not bounds:
            return np.zeros(g.scale_shape), np.zeros(g.scale_shape)
        return g.join_params([b[0] for b in bounds]), g.join_params([b[1] for b in bounds])
    s = qparams.effective_scale
    scheme = qparams.scheme
    if scheme.kind == "int":
        z = qparams.zero_point if scheme.mapping is Mapping.ASYMMETRIC else 0
        return (scheme.qmin - z - 0.5) * s, (scheme.qmax - z + 0.5) * s
    v = grid.grid_values(scheme)
    return (v[0] - (v[1] - v[0]) / 2) * s, (v[-1] + (v[-1] - v[-2]) / 2) * s


def _bounds_from_levels(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The levels each row of xq uses, its ends pushed out by half the neighbouring gap."""
    ordered = np.sort(rows, axis=1)
    lo, hi = ordered[:, 0], ordered[:, -1]
    above = np.where(ordered > lo[:, None], ordered, np.inf).min(axis=1)
    below = np.where(ordered < hi[:, None], ordered, -np.inf).max(axis=1)
    gap_lo = np.where(np.isfinite(above), above - lo, 0.0)
    gap_hi = np.where(np.isfinite(below), hi - below, 0.0)
    return lo - gap_lo / 2, hi + gap_hi / 2


def _per_group(g: Grouping, a, sq, clipped) -> dict[str, np.ndarray]:
    parts = {"mse": [], "sqnr_db": [], "clipped_fraction": []}
    for rows, err, clip in zip(g.blocks(a), g.blocks(sq), g.blocks(clipped), strict=True):
        noise = err.sum(axis=1)
        signal = np.square(rows).sum(axis=1)
        parts["mse"].append(err.mean(axis=1))
        parts["sqnr_db"].append(np.array([_sqnr(s, n) for s, n in zip(signal, noise, strict=True)]))
        parts["clipped_fraction"].append(clip.mean(axis=1))
    return {k: g.join_params(v) for k, v in parts.items()}


def _sqnr(signal: float, noise: float) -> float:
    if noise == 0:
        return math.inf
    if signal == 0:
        return -math.inf
    return 10 * math.log10(signal / noise)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.sqrt(np.square(a).sum())), float(np.sqrt(np.square(b).sum()))
    if na == 0 and nb == 0:
        return 1.0
    if na == 0 or nb == 0:
        return 0.0
    return float(np.dot(a.reshape(-1), b.reshape(-1)) / (na * nb))


# -- several schemes -----------------------------------------------------------------------------
@dataclass(frozen=True)
class SchemeComparison(Displayable):
    """One row per scheme: bits per value and every error metric."""

    shape: tuple[int, ...]
    rows: tuple[ErrorReport, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "schemes": [r.to_dict() for r in self.rows]}

    def best(self, metric: str = "sqnr_db") -> ErrorReport:
        """The row with the best value of a metric (highest SQNR / cosine, else lowest)."""
        higher = metric in ("sqnr_db", "cosine")
        key = (lambda r: getattr(r, metric)) if higher else (lambda r: -getattr(r, metric))
        return max(self.rows, key=key)


def compare_schemes(
    x: Any, schemes: list[QuantScheme | str], *, nan_policy: str = "error"
) -> SchemeComparison:
    """Quantize x under each scheme and report the cost of each, side by side.

    Example:
        >>> x = np.random.default_rng(0).standard_normal((64, 256))
        >>> table = compare_schemes(x, ["int8", "int4/group:32", "nf4"])
        >>> [round(r.bits_per_value, 3) for r in table.rows]
        [8.002, 5.0, 4.5]
    """
    from numfmt.quant.tensor import quantize_tensor

    if not schemes:
        raise NumfmtError("compare_schemes needs at least one scheme")
    a, _ = as_array(x)
    rows = []
    for s in schemes:
        qt = quantize_tensor(a, s, nan_policy=nan_policy)
        rows.append(qt.report(a))
    return SchemeComparison(tuple(a.shape), tuple(rows))
