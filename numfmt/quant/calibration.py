"""Range selection: the methods that choose each group's range [lo, hi] before it becomes a scale.

Every method has the same signature, ``method(rows, scheme, tensor_scale, **options)``, takes a
2-D block whose rows are groups, and returns per-row ``(lo, hi)``:

===============  =================================================================  ============
method           chooses                                                            options
===============  =================================================================  ============
minmax           the extremes of the group                                          -
percentile       the p-th percentile of |x| (asymmetric: of x, at both ends)        percentile
mse              the clip ratio (of the minmax range) whose quantization error has  ratios
                 the least mean square, by grid search (ratio 1 included, so it
                 is never worse than minmax)
search           mse with your own loss(rows, rows_quantized) -> per-row losses     loss, ratios
                 (or one number, then one ratio serves every group): the hook the
                 model layer uses for cross-entropy calibration
entropy          the threshold whose clipped, quantized histogram is closest to     bins
                 the original in KL divergence (TensorRT's calibrator)
l2_histogram     the histogram range whose estimated L2 quantization error is       bins
                 least, found by shrinking it a bin at a time from the cheaper
                 side (what torch's HistogramObserver does)
===============  =================================================================  ============

``entropy`` and ``l2_histogram`` work on histograms (2048 bins by default); they suit one
tensor of activations best, and cost O(rows x bins) or more per call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from numfmt.errors import NumfmtError
from numfmt.formats.rounding import Rounding
from numfmt.quant import grid
from numfmt.quant.scheme import Mapping, QuantScheme

Range = tuple[np.ndarray, np.ndarray]


def minmax(rows: np.ndarray, scheme: QuantScheme, tensor_scale=None) -> Range:
    """The extremes of each group."""
    from numfmt.quant import _kernels

    fused = _kernels.row_minmax(rows)
    if fused is not None:
        return fused
    return rows.min(axis=1).astype(np.float64), rows.max(axis=1).astype(np.float64)


def percentile(rows, scheme, tensor_scale=None, percentile: float = 99.99) -> Range:
    """The p-th percentile of |x| (symmetric), or of x at both ends (asymmetric)."""
    if scheme.mapping is Mapping.SYMMETRIC:
        a = np.percentile(np.abs(rows), percentile, axis=1)
        return -a, a
    lo = np.percentile(rows, 100 - percentile, axis=1)
    return lo, np.percentile(rows, percentile, axis=1)


def mse(rows, scheme, tensor_scale=None, ratios: int = 100) -> Range:
    """The clip ratio of least mean square quantization error, by grid search."""
    return search(rows, scheme, tensor_scale, ratios=ratios, loss=None)


def search(
    rows,
    scheme,
    tensor_scale=None,
    ratios: int = 100,
    loss: Callable[[np.ndarray, np.ndarray], Any] | None = None,
) -> Range:
    """Grid search over clip ratios k / ratios (k = ratios .. 1) of the minmax range.

    Args:
        loss: ``loss(rows, rows_quantized)`` -> a loss per row, or one number for all rows
            (then every group takes the same ratio). Default: the mean square error.
    """
    lo0, hi0 = minmax(rows, scheme)
    if scheme.rounding is not Rounding.NEAREST_EVEN:
        scheme = scheme.with_(rounding=Rounding.NEAREST_EVEN)  # search on the deterministic grid
    if loss is None and scheme.kind == "int":
        from numfmt.quant import _kernels

        best = _kernels.mse_search(rows, lo0, hi0, scheme, ratios)
        if best is None:
            best = _mse_search_int(rows, lo0, hi0, scheme, ratios)
        return lo0 * best, hi0 * best
    best_loss = np.full(rows.shape[0], np.inf)
    best = np.ones(rows.shape[0])
    for k in range(ratios, 0, -1):  # from the full range down: ties keep the wider range
        r = k / ratios
        s, z = grid.scales(lo0 * r, hi0 * r, scheme, tensor_scale)
        approx = grid.dequantize_rows(grid.quantize_rows(rows, s, z, scheme), s, z, scheme)
        if loss is None:
            value = np.mean(np.square(approx - rows), axis=1)
        else:
            value = np.broadcast_to(np.asarray(loss(rows, approx), dtype=np.float64), best.shape)
        better = value < best_loss
        best_loss = np.where(better, value, best_loss)
        best = np.where(better, r, best)
    return lo0 * best, hi0 * best


def candidate_scales(lo0, hi0, scheme: QuantScheme, ratios: int):
    """(ratios, scales, zero points) of the grid search: column k keeps ratio r_k of each
    row's range, from the full range down (so that ties keep the wider range)."""
    r = np.arange(ratios, 0, -1) / ratios
    lo = lo0[:, None] * r[None, :]
    hi = hi0[:, None] * r[None, :]
    s, z = grid.scales(lo.reshape(-1), hi.reshape(-1), scheme)
    z = np.zeros(lo.shape, np.int64) if z is None else z.reshape(lo.shape)
    return r, s.reshape(lo.shape), z


def _mse_search_int(rows, lo0, hi0, scheme: QuantScheme, ratios: int) -> np.ndarray:
    """The numpy twin of the compiled search (int targets): chunks of rows that fit in cache,
    buffers reused, 1 / scale multiplied as the kernel does."""
    r, scales, zeros = candidate_scales(lo0, hi0, scheme, ratios)
    with np.errstate(divide="ignore"):
        inverse = np.where(scales > 0, 1.0 / np.where(scales > 0, scales, 1.0), 0.0)
    lows, highs = scheme.qmin - zeros, scheme.qmax - zeros
    best = np.zeros(rows.shape[0], dtype=np.int64)
    chunk = max(1, (1 << 17) // max(rows.shape[1], 1))
    for start in range(0, rows.shape[0], chunk):
        part = slice(start, start + chunk)
        block = rows[part].astype(np.float64)
        buf = np.empty_like(block)
        errors = np.empty((block.shape[0], len(r)))
        for k in range(len(r)):
            np.multiply(block, inverse[part, k, None], out=buf)
            np.rint(buf, out=buf)
            np.clip(buf, lows[part, k, None], highs[part, k, None], out=buf)
            buf *= scales[part, k, None]
            buf -= block
            np.square(buf, out=buf)
            errors[:, k] = buf.sum(axis=1)
        best[part] = np.argmin(errors, axis=1)  # the first of equal errors: the wider range
    return r[best]


# -- histogram methods ---------------------------------------------------------------------------
def entropy(rows, scheme, tensor_scale=None, bins: int = 2048) -> Range:
    """TensorRT's KL-divergence threshold, on a histogram of |x| per group."""
    levels = _positive_levels(scheme)
    amax = np.abs(rows).max(axis=1).astype(np.float64)
    out = np.empty(rows.shape[0])
    for i, row in enumerate(rows):
        if amax[i] == 0:
            out[i] = 0.0
            continue
        hist, edges = np.histogram(np.abs(row), bins=bins, range=(0.0, amax[i]))
        out[i] = entropy_threshold(hist, edges, levels)
    lo, hi = minmax(rows, scheme)
    return np.maximum(lo, -out), np.minimum(hi, out)


def entropy_threshold(hist: np.ndarray, edges: np.ndarray, levels: int) -> float:
    """The |x| threshold that minimises KL(P || Q) for a histogram of |x| from 0.

    For each candidate bin count i (from ``levels`` up, at most 256 candidates): P is the
    histogram cut at i with the outliers added to its last bin; Q squeezes the first i bins
    into ``levels`` chunks of i // levels bins (the last chunk takes the remainder), each
    chunk's count spread evenly over its non-empty bins.
    """
    hist = np.asarray(hist, dtype=np.float64)
    n = len(hist)
    if n <= levels:
        return float(edges[-1])
    candidates = np.unique(np.linspace(levels, n, min(256, n - levels + 1)).astype(int))
    tail = np.concatenate([np.cumsum(hist[::-1])[::-1], [0.0]])  # tail[i] = sum(hist[i:])
    best, best_kl = n, np.inf
    for i in candidates:
        p = hist[:i].copy()
        p[-1] += tail[i]
        chunk = np.minimum(np.arange(i) // (i // levels), levels - 1)  # the last takes the rest
        nonzero = hist[:i] > 0
        totals = np.bincount(chunk, weights=hist[:i], minlength=levels)
        counts = np.bincount(chunk, weights=nonzero, minlength=levels)
        q = np.where(nonzero, totals[chunk] / np.maximum(counts[chunk], 1), 0.0)
        kl = _kl(p, q)
        if kl < best_kl:
            best, best_kl = i, kl
    return float(edges[best])


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    p_sum, q_sum = p.sum(), q.sum()
    if p_sum == 0 or q_sum == 0:
        return np.inf
    p, q = p / p_sum, q / q_sum
    mask = p > 0
    q = np.where(q > 0, q, 1e-12)  # smoothing where P has mass and Q none
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))


def l2_histogram(rows, scheme, tensor_scale=None, bins: int = 2048) -> Range:
    """The histogram range of least estimated L2 error, shrunk a bin at a time."""
    lo0, hi0 = minmax(rows, scheme)
    symmetric = scheme.mapping is Mapping.SYMMETRIC
    los, his = np.empty(rows.shape[0]), np.empty(rows.shape[0])
    levels = _levels(scheme)
    for i, row in enumerate(rows):
        if symmetric:
            a = max(-lo0[i], hi0[i])
            hist, edges = np.histogram(np.abs(row), bins=bins, range=(0.0, a or 1.0))
            _, t = l2_range(hist, edges, levels, symmetric=True)
            los[i], his[i] = -t, t
        else:
            hist, edges = np.histogram(row, bins=bins, range=(lo0[i], hi0[i] or lo0[i] + 1))
            los[i], his[i] = l2_range(hist, edges, levels, symmetric=False)
    return np.maximum(los, lo0), np.minimum(his, hi0)


def l2_range(hist, edges, levels: int, symmetric: bool) -> tuple[float, float]:
    """The range [lo, hi] (bin edges) of least estimated L2 quantization error.

    The error of a candidate range is, per bin, (count) x (mean square distance): to the grid
    step's uniform noise Delta^2 / 12 inside the range, and to the nearer edge outside (each
    bin's values taken as uniform over the bin). Prefix sums make every candidate O(1).
    Symmetric: a histogram of |x| from 0, where only the top edge moves (all candidates);
    asymmetric: both edges move, from whichever side lowers the error more.
    """
    c = np.asarray(hist, dtype=np.float64)
    n = len(c)
    width = edges[1] - edges[0]
    mid = (edges[:-1] + edges[1:]) / 2
    s0 = np.concatenate([[0.0], np.cumsum(c)])
    s1 = np.concatenate([[0.0], np.cumsum(c * mid)])
    s2 = np.concatenate([[0.0], np.cumsum(c * mid * mid)])
    spread = width * width / 12

    def error(i, j):
        lo_e, hi_e = edges[i], edges[j]
        left = s2[i] - 2 * lo_e * s1[i] + lo_e**2 * s0[i] + s0[i] * spread
        n_r = s0[n] - s0[j]
        right = (s2[n] - s2[j]) - 2 * hi_e * (s1[n] - s1[j]) + hi_e**2 * n_r + n_r * spread
        span = (hi_e - lo_e) * (2 if symmetric else 1)
        step = span / max(levels - 1, 1)
        inside = (s0[j] - s0[i]) * step * step / 12
        return (0.0 if symmetric else left) + right + inside

    if symmetric:
        j = np.arange(1, n + 1)
        errs = error(0, j)
        best = int(j[np.argmin(errs)])
        return 0.0, float(edges[best])
    i, j = 0, n
    best_err, best = error(0, n), (0, n)
    while j - i > 1:
        left, right = error(i + 1, j), error(i, j - 1)
        i, j = (i + 1, j) if left <= right else (i, j - 1)
        e = min(left, right)
        if e < best_err:
            best_err, best = e, (i, j)
    return float(edges[best[0]]), float(edges[best[1]])


def _levels(scheme: QuantScheme) -> int:
    """How many values the grid has."""
    if scheme.kind == "int":
        return scheme.qmax - scheme.qmin + 1
    return len(grid.grid_values(scheme))


def _positive_levels(scheme: QuantScheme) -> int:
    values = grid.grid_values(scheme)
    return int(np.count_nonzero(values > 0))


# -- registry ------------------------------------------------------------------------------------
METHODS: dict[str, Callable[..., Range]] = {
    "minmax": minmax,
    "percentile": percentile,
    "mse": mse,
    "search": search,
    "entropy": entropy,
    "l2_histogram": l2_histogram,
}

_OPTIONS = {
    "minmax": {},
    "percentile": {"percentile": float},
    "mse": {"ratios": int},
    "search": {"ratios": int, "loss": object},
    "entropy": {"bins": int},
    "l2_histogram": {"bins": int},
}
_SHORT_OPTION = {
    "percentile": "percentile",
    "mse": "ratios",
    "entropy": "bins",
    "l2_histogram": "bins",
    "search": "ratios",
}


def check_method(name: str, options: dict[str, Any]) -> None:
    """Raise a clear NumfmtError for an unknown method or option, or an option out of range."""
    if name not in METHODS:
        raise NumfmtError(f"unknown calibration method '{name}'; use {', '.join(METHODS)}")
    for key, value in options.items():
        if key not in _OPTIONS[name]:
            allowed = ", ".join(_OPTIONS[name]) or "no options"
            raise NumfmtError(f"'{name}' takes {allowed}, not '{key}'")
        if key == "percentile" and not 0 < float(value) <= 100:
            raise NumfmtError(f"a percentile lies in (0, 100], not {value}")
        if key in ("ratios", "bins") and (int(value) != value or int(value) < 1):
            raise NumfmtError(f"{key} must be a positive integer, not {value}")
        if key == "loss" and not callable(value):
            raise NumfmtError("loss must be a callable: loss(rows, rows_quantized)")
    if name == "search" and "loss" not in options:
        raise NumfmtError(
            "'search' needs loss=callable(rows, rows_quantized); 'mse' is the default loss"
        )


def parse_argument(method: str, text: str) -> dict[str, Any]:
    """``percentile:99.9`` -> {'percentile': 99.9}; ``mse:200`` -> {'ratios': 200}."""
    key = _SHORT_OPTION.get(method)
    if key is None:
        raise NumfmtError(f"'{method}' takes no argument")
    try:
        return {key: _OPTIONS[method][key](text)}
    except ValueError:
        raise NumfmtError(f"cannot read '{text}' as the {key} of {method}") from None


def calibrate(rows: np.ndarray, scheme: QuantScheme, tensor_scale: float | None = None) -> Range:
    """Run the scheme's method on a block of groups."""
    return METHODS[scheme.method](rows, scheme, tensor_scale, **scheme.method_options)
