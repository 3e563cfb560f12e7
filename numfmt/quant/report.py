"""Error analysis: what quantizing a tensor cost, in numbers, per tensor and per group.

==================  =======================================================================
mse, rmse, mae      mean square / root mean square / mean absolute error
max_abs_error       the worst element
sqnr_db             10 log10(sum x^2 / sum (x - xq)^2): signal to quantization noise (inf when
                    there is no noise, ``null`` in JSON)
cosine              cosine similarity of x and xq (1 for two zero tensors)
clipped_fraction    the share of elements outside the grid's range (they were clipped)
clip_share          the share of the squared error that comes from clipped elements; the rest
                    (rounding_share) comes from rounding inside the range
==================  =======================================================================

An element is clipped when its code would lie beyond the end of its group's grid: when it is
more than half a step (the grid's last gap) beyond the last level (``grid.clip_bounds``, the
one definition the grid figure and the clipped straight-through estimator use too). With
qparams the grid is known; without, the levels are read off xq (a clipped element lands on the
last level, so the extreme quantized values are the grid's ends whenever anything was
clipped).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from numfmt._display import Displayable
from numfmt.errors import NumfmtError
from numfmt.quant import _xp, grid
from numfmt.quant.granularity import Grouping, PerTensor
from numfmt.quant.qparams import QParams

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
        d: dict[str, Any] = {
            "scheme": self.scheme,
            "n": self.n,
            "bits_per_value": self.bits_per_value,
        }
        d.update({m: getattr(self, m) for m in METRICS})
        if math.isinf(d["sqnr_db"]) and d["sqnr_db"] > 0:
            d["sqnr_db"] = None  # no noise: infinite SQNR
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
    nan_policy: str = "error",
) -> ErrorReport:
    """Compare a tensor with its quantized version (numpy or torch, on any device).

    Args:
        x: the original values.
        xq: the dequantized values, same shape.
        qparams: the parameters that made xq (gives the exact range and per-group figures).
        grouping: without qparams, the groups to report per (default: the whole tensor).
        nan_policy: ``error`` refuses NaN and inf in x; ``omit`` measures the finite
            elements of x only (n counts them), so that no metric is NaN.

    Examples:
        >>> r = error_report([0.9, 2.1, 3.05, 9.0], [1.0, 2.0, 3.0, 3.0])
        >>> round(r.mse, 4), r.clipped_fraction
        (9.0056, 0.25)
    """
    a, xp = _xp.read(x)
    b = _same_library(xq, a)
    if tuple(a.shape) != tuple(b.shape):
        raise NumfmtError(f"x has shape {tuple(a.shape)} but xq has {tuple(b.shape)}")
    if nan_policy not in ("error", "omit"):
        raise NumfmtError(f"nan_policy is 'error' or 'omit', not '{nan_policy}'")
    keep = None
    if not bool(xp.all(xp.isfinite(a))):
        if nan_policy == "error":
            raise NumfmtError(
                "error_report needs finite values: x holds NaN or inf "
                "(nan_policy='omit' measures the finite elements only)"
            )
        keep = xp.isfinite(a)
        a = xp.where(keep, a, xp.zeros_like(a))
        b = xp.where(keep, b, xp.zeros_like(b))
    if not bool(xp.all(xp.isfinite(b))):
        raise NumfmtError("error_report needs finite values: xq holds NaN or inf")
    if qparams is not None:
        from numfmt.quant.qparams import _fit

        qparams = _fit(a, qparams)
    g = qparams.grouping if qparams is not None else grouping or Grouping(a.shape, PerTensor())
    with np.errstate(over="ignore", invalid="ignore"):  # sums too large: _from_sums says so
        sums = _row_sums(xp, a, b, keep, qparams, g)
    return _from_sums(xp, sums, qparams, g)


def codes_error_report(
    x: Any, codes: Any, qparams: QParams, *, nan_policy: str = "error"
) -> ErrorReport | None:
    """``error_report(x, dequantize(codes, qparams), qparams=qparams)`` in one pass over x and
    the codes, each value decoded on the fly as ``dequantize`` decodes it (the host kernel;
    the sums are the same up to their order of addition); None where the kernel does not
    cover it, or where the general path has something to refuse (NaN under
    ``nan_policy="error"``, a code off the grid), which it then says."""
    from numfmt.quant import _kernels
    from numfmt.quant.qparams import _block_params, _fit

    a, xp = _xp.read(x)
    c = codes if _xp.is_torch(codes) else np.asarray(codes)
    if tuple(a.shape) != tuple(c.shape) or _xp.is_torch(a) != _xp.is_torch(c):
        return None
    if nan_policy not in ("error", "omit") or int(np.prod(a.shape)) == 0:
        return None
    qparams = _fit(a, qparams)
    g = qparams.grouping
    lo, hi = grid.clip_bounds(qparams)
    parts: dict[str, list] = {k: [] for k in _SUMS}
    for rows, block, p, lo_b, hi_b in zip(
        g.blocks(a),
        g.blocks(c),
        _block_params(qparams, stored=True),
        g.split_params(lo),
        g.split_params(hi),
        strict=True,
    ):
        got = _kernels.error_sums(
            rows, block, qparams.scheme, p["scale"], p["zero"], p["minimum"], lo_b, hi_b,
            nan_policy == "omit",
        )  # fmt: skip
        if got is None:
            return None
        sums, bad = got
        if (nan_policy == "error" and bool(xp.any(bad > 0))) or bool(xp.any(xp.isnan(sums[:, 1]))):
            return None
        for i, k in enumerate(_SUMS):
            parts[k].append(sums[:, i])
    return _from_sums(xp, {k: g.join_params(v) for k, v in parts.items()}, qparams, g)


def _from_sums(xp, sums: dict[str, Any], qparams: QParams | None, g: Grouping) -> ErrorReport:
    """The report from each group's sums (``_SUMS``, in the scale layout)."""
    total = {k: float(xp.sum(v)) for k, v in sums.items()}
    if not all(math.isfinite(v) for v in total.values()):
        raise NumfmtError(
            "the values are too large to measure: the error report's sums of squares (of x, "
            "xq and their difference) overflow float64, which happens beyond about 1e154 in "
            "magnitude; scale the tensor down first"
        )
    n = round(total["n"])
    noise = total["sq"]
    return ErrorReport(
        n=n,
        mse=noise / n if n else 0.0,
        mae=total["abs"] / n if n else 0.0,
        max_abs_error=float(xp.max(sums["max"])) if n else 0.0,
        sqnr_db=_sqnr(total["signal"], noise),
        cosine=_cosine(total["signal"], total["signal_q"], total["dot"]),
        clipped_fraction=total["clipped"] / n if n else 0.0,
        clip_share=total["clipped_sq"] / noise if noise > 0 else 0.0,
        scheme=None if qparams is None else str(qparams.scheme),
        per_group=_per_group(xp, sums) if g.num_groups > 1 else {},
    )


def _same_library(xq: Any, a: Any):
    """xq read as an array of a's library, on a's device."""
    b, _ = _xp.read(xq)
    if _xp.is_torch(a) != _xp.is_torch(b):
        xp = _xp.namespace(a)
        b = xp.asarray(_xp.to_numpy(b), device=_xp.device(a))
    return b


_SUMS = ("n", "sq", "abs", "signal", "signal_q", "dot", "clipped", "clipped_sq", "max")


def _row_sums(xp, a, b, keep, qparams: QParams | None, g: Grouping) -> dict[str, Any]:
    """Per group (scale layout): counts, sums of squares and products, clipped counts."""
    if g.size == 0:
        z = xp.zeros(g.scale_shape, dtype=xp.float64, device=_xp.device(a))
        return {k: z for k in _SUMS}
    lo, hi = _clip_bounds(xp, qparams, g, b)
    parts: dict[str, list] = {k: [] for k in _SUMS}
    blocks_keep = g.blocks(keep) if keep is not None else [None] * len(g.block_widths)
    for rows, rows_q, kept, lo_b, hi_b in zip(
        g.blocks(a),
        g.blocks(b),
        blocks_keep,
        g.split_params(lo),
        g.split_params(hi),
        strict=True,
    ):
        # a few rows at a time: each row's sums are its own, and the float64 temporaries of a
        # large tensor (an embedding of 28M weights) stay a few MB rather than a few GB
        step = max(1, _ROWS_ELEMENTS // max(1, rows.shape[1]))
        pieces: dict[str, list] = {k: [] for k in _SUMS}
        for i in range(0, max(rows.shape[0], 1), step):
            part = slice(i, i + step)
            kept_part = None if kept is None else kept[part]
            sums = _sums_of_rows(xp, rows[part], rows_q[part], kept_part, lo_b[part], hi_b[part])
            for k in _SUMS:
                pieces[k].append(sums[k])
        for k in _SUMS:
            parts[k].append(pieces[k][0] if len(pieces[k]) == 1 else xp.concat(pieces[k]))
    return {k: g.join_params(v) for k, v in parts.items()}


#: Elements of the float64 temporaries _row_sums holds at once (8 MB each).
_ROWS_ELEMENTS = 1 << 20


def _sums_of_rows(xp, rows, rows_q, kept, lo_b, hi_b) -> dict[str, Any]:
    """Each row's counts, sums of squares and products, clipped counts and largest error."""
    x64 = xp.astype(rows, xp.float64)
    q64 = xp.astype(rows_q, xp.float64)
    err = q64 - x64
    sq = err * err
    clipped = (x64 < lo_b[:, None]) | (x64 > hi_b[:, None])
    out = {}
    if kept is not None:
        clipped = clipped & kept
        out["n"] = xp.sum(xp.astype(kept, xp.float64), axis=1)
    else:
        out["n"] = xp.full(
            (rows.shape[0],), float(rows.shape[1]), dtype=xp.float64, device=_xp.device(rows)
        )
    out["sq"] = xp.sum(sq, axis=1)
    out["abs"] = xp.sum(xp.abs(err), axis=1)
    out["signal"] = xp.sum(x64 * x64, axis=1)
    out["signal_q"] = xp.sum(q64 * q64, axis=1)
    out["dot"] = xp.sum(x64 * q64, axis=1)
    out["clipped"] = xp.sum(xp.astype(clipped, xp.float64), axis=1)
    out["clipped_sq"] = xp.sum(xp.where(clipped, sq, xp.zeros_like(sq)), axis=1)
    out["max"] = xp.max(xp.abs(err), axis=1) if rows.shape[1] else xp.zeros_like(out["n"])
    return out


def _clip_bounds(xp, qparams: QParams | None, g: Grouping, xq):
    """Per-group bounds beyond which an element is clipped (scale layout): with qparams, the
    grid's (see ``grid.clip_bounds``); without, read off the levels xq uses."""
    if qparams is not None:
        return grid.clip_bounds(qparams)
    bounds = [_bounds_from_levels(xp, rows) for rows in g.blocks(xq)]
    return g.join_params([b[0] for b in bounds]), g.join_params([b[1] for b in bounds])


def _bounds_from_levels(xp, rows):
    """The levels each row of xq uses, its ends pushed out by half the neighbouring gap."""
    ordered = xp.sort(xp.astype(rows, xp.float64), axis=1)
    lo, hi = ordered[:, 0], ordered[:, -1]
    inf = xp.full_like(ordered, float("inf"))
    above = xp.min(xp.where(ordered > lo[:, None], ordered, inf), axis=1)
    below = xp.max(xp.where(ordered < hi[:, None], ordered, -inf), axis=1)
    gap_lo = xp.where(xp.isfinite(above), above - lo, xp.zeros_like(lo))
    gap_hi = xp.where(xp.isfinite(below), hi - below, xp.zeros_like(hi))
    return lo - gap_lo / 2, hi + gap_hi / 2


def _per_group(xp, sums) -> dict[str, np.ndarray]:
    n = _xp.to_numpy(sums["n"])
    sq = _xp.to_numpy(sums["sq"])
    signal = _xp.to_numpy(sums["signal"])
    with np.errstate(divide="ignore", invalid="ignore"):
        mse = np.where(n > 0, sq / np.maximum(n, 1), 0.0)
        sqnr = np.where(sq == 0, np.inf, np.where(signal == 0, -np.inf, 10 * np.log10(signal / sq)))
        clipped = np.where(n > 0, _xp.to_numpy(sums["clipped"]) / np.maximum(n, 1), 0.0)
    return {"mse": mse, "sqnr_db": sqnr, "clipped_fraction": clipped}


def _sqnr(signal: float, noise: float) -> float:
    if noise == 0:
        return math.inf
    if signal == 0:
        return -math.inf
    return 10 * math.log10(signal / noise)


def _cosine(signal: float, signal_q: float, dot: float) -> float:
    na, nb = math.sqrt(signal), math.sqrt(signal_q)
    if na == 0 and nb == 0:
        return 1.0
    if na == 0 or nb == 0:
        return 0.0
    return max(-1.0, min(1.0, dot / (na * nb)))


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
