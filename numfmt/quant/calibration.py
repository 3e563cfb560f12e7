"""Range selection: the methods that choose each group's range [lo, hi] before it becomes a scale.

Every method has the same signature, ``method(xp, rows, scheme, tensor_scale, **options)``,
takes a 2-D block whose rows are groups (a numpy array or a torch tensor), and returns per-row
``(lo, hi)`` as float64 arrays of the same library, on the same device:

===============  =================================================================  ============
method           chooses                                                            options
===============  =================================================================  ============
minmax           the extremes of the group                                          -
percentile       the p-th percentile of |x| (asymmetric: of x, at both ends), with  percentile
                 linear interpolation between order statistics
mse              the clip ratio (of the minmax range) whose quantization error has  ratios
                 the least mean square, by grid search (ratio 1 included, so it
                 is never worse than minmax)
search           mse with your own loss(rows, rows_quantized) -> per-row losses     loss, ratios
                 (or one number, then one ratio serves every group): the hook the
                 model layer uses for cross-entropy calibration. Python only:
                 ``choose_qparams(x, scheme, method="search", loss=fn)``
entropy          the threshold whose clipped, quantized histogram is closest to     bins
                 the original in KL divergence (TensorRT's calibrator)
l2_histogram     the histogram range whose estimated L2 quantization error is       bins
                 least, found by shrinking it a bin at a time from the cheaper
                 side (what torch's HistogramObserver does)
===============  =================================================================  ============

The searches choose, among candidates whose loss is within a relative 1e-9 of the least, the
first (the widest range): sums taken in different orders (numpy, torch, the compiled kernel)
then choose the same candidate. ``entropy`` and ``l2_histogram`` build one histogram per group
(2048 bins by default) and are vectorised over groups; they suit activations per tensor best.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from numfmt.formats.rounding import Rounding
from numfmt.quant import _kernels, _xp, grid
from numfmt.quant.schemes import Mapping, QuantScheme

#: Candidates within this relative distance of the least loss count as equal (the first wins).
TIE = 1e-9


def row_ranges(xp, rows):
    """Per-row minimum and maximum (float64; NaN where a row holds NaN): numba's kernel on the
    host, the array namespace elsewhere."""
    fused = _kernels.row_minmax(rows)
    return _xp.row_min_max(xp, rows) if fused is None else fused


def minmax(xp, rows, scheme: QuantScheme, tensor_scale=None):
    """The extremes of each group."""
    return row_ranges(xp, rows)


def percentile(xp, rows, scheme: QuantScheme, tensor_scale=None, percentile: float = 99.99):
    """The p-th percentile of |x| (symmetric), or of x at both ends (otherwise)."""
    if scheme.mapping is Mapping.SYMMETRIC:
        a = _quantiles(xp, xp.abs(rows), [percentile / 100])[:, 0]
        return -a, a
    both = _quantiles(xp, rows, [1 - percentile / 100, percentile / 100])
    return both[:, 0], both[:, 1]


def _quantiles(xp, rows, qs: list[float]):
    """Per-row quantiles with linear interpolation (numpy's default), (rows, len(qs))."""
    n = rows.shape[1]
    positions = [q * (n - 1) for q in qs]
    below = [int(np.floor(p)) for p in positions]
    above = [min(b + 1, n - 1) for b in below]
    stats = _xp.order_statistics(xp, rows, below + above)
    k = len(qs)
    frac = _xp.asarray_like(
        xp, [p - b for p, b in zip(positions, below, strict=True)], rows, xp.float64
    )
    lo, hi = stats[:, :k], stats[:, k:]
    return lo + (hi - lo) * frac[None, :]


def mse(xp, rows, scheme: QuantScheme, tensor_scale=None, ratios: int = 100):
    """The clip ratio of least mean square quantization error, by grid search."""
    return search(xp, rows, scheme, tensor_scale, ratios=ratios, loss=None)


def search(
    xp,
    rows,
    scheme: QuantScheme,
    tensor_scale=None,
    ratios: int = 100,
    loss: Callable[[Any, Any], Any] | None = None,
):
    """Grid search over clip ratios k / ratios (k = ratios .. 1) of the minmax range.

    Args:
        loss: ``loss(rows, rows_quantized)`` -> a loss per row, or one number for all rows
            (then every group takes the same ratio). Default: the mean square error.
    """
    lo0, hi0 = minmax(xp, rows, scheme)
    if scheme.rounding is not Rounding.NEAREST_EVEN:
        scheme = scheme.with_(rounding=Rounding.NEAREST_EVEN)  # search on the deterministic grid
    if loss is None and tensor_scale is None and not _xp.on_cpu(rows):
        from numfmt.quant import _gpu

        found = _gpu.mse_search(rows, lo0, hi0, scheme, ratios)
        if found is not None:
            return found
    r, scales, zeros, minima = grid.candidate_scales(xp, lo0, hi0, scheme, ratios, tensor_scale)
    if loss is None:
        errors = _squared_errors(xp, rows, scales, zeros, minima, scheme)
    else:
        columns = []
        for k in range(ratios):
            z = None if zeros is None else zeros[:, k]
            m = None if minima is None else minima[:, k]
            approx = _fake(xp, rows, scales[:, k], z, m, scheme)
            value = xp.asarray(loss(rows, approx), dtype=xp.float64, device=_xp.device(rows))
            columns.append(xp.broadcast_to(xp.reshape(value, (-1,)), (rows.shape[0],)))
        errors = xp.stack(columns, axis=1)
    best = first_least(xp, errors)
    chosen = xp.take(r, best)
    return lo0 * chosen, hi0 * chosen


def first_least(xp, losses):
    """Per row, the first column whose loss is within a relative TIE of the least."""
    least = xp.min(losses, axis=1, keepdims=True)
    close = losses <= least + xp.abs(least) * TIE
    return xp.argmax(xp.astype(close, xp.int8), axis=1)


def _fake(xp, rows, scale, zero, minimum, scheme):
    codes = grid.quantize_rows(xp, rows, scale, zero, minimum, scheme)
    return grid.dequantize_rows(xp, codes, scale, zero, minimum, scheme)


def _squared_errors(xp, rows, scales, zeros, minima, scheme: QuantScheme):
    """Sum of squared errors of each row under each candidate column, (rows, candidates)."""
    if scheme.kind == "int" and minima is None:
        if _xp.on_cpu(rows):
            errors = _kernels.mse_errors(rows, scales, zeros, scheme)
        else:
            from numfmt.quant import _gpu

            errors = _gpu.mse_errors(rows, scales, zeros, scheme)
        if errors is not None:
            return errors
    n_rows, width = rows.shape
    count = scales.shape[1]
    # chunks of rows, and of candidates when one row's candidates alone would not fit
    on_host = _xp.on_cpu(rows)
    per_part = max(1, (_xp.CHUNK if on_host else _xp.DEVICE_CHUNK) // max(width, 1))
    columns = [slice(k, min(count, k + per_part)) for k in range(0, count, per_part)]
    out = []
    for part in _xp.row_chunks(n_rows, width * count, on_host):
        block = rows[part]
        pieces = [
            _candidate_errors(
                xp, block, scales[part, c], _cut2(zeros, part, c), _cut2(minima, part, c), scheme
            )
            for c in columns
        ]
        out.append(pieces[0] if len(pieces) == 1 else xp.concat(pieces, axis=1))
    return out[0] if len(out) == 1 else xp.concat(out, axis=0)


def _cut2(a, rows, columns):
    return None if a is None else a[rows, columns]


def _candidate_errors(xp, block, scales, zeros, minima, scheme: QuantScheme):
    """Squared errors of a block of rows under some candidate columns, (rows, columns)."""
    if scheme.kind == "int":
        return _int_errors(xp, block, scales, zeros, minima, scheme)
    count, width = scales.shape[1], block.shape[1]
    flat = xp.reshape(
        xp.broadcast_to(block[:, None, :], (block.shape[0], count, width)), (-1, width)
    )

    def column(a):
        return None if a is None else xp.reshape(a, (-1,))

    approx = _fake(xp, flat, column(scales), column(zeros), column(minima), scheme)
    err = approx - xp.astype(flat, xp.float64)
    return xp.reshape(xp.sum(err * err, axis=1), (block.shape[0], count))


def _cut(a, part):
    return None if a is None else a[part]


def _int_errors(xp, rows, scales, zeros, minima, scheme: QuantScheme):
    """Squared errors of int grids under every candidate, multiplying by 1 / scale as the
    compiled search does (see ``_jit.mse_errors_int``): (rows, candidates)."""
    x = xp.astype(rows, xp.float64)[:, None, :]
    if minima is not None:
        x = x - minima[:, :, None]
    live = scales > 0
    inverse = xp.where(
        live, 1 / xp.where(live, scales, xp.ones_like(scales)), xp.zeros_like(scales)
    )[:, :, None]
    z = 0.0 if zeros is None else xp.astype(zeros, xp.float64)[:, :, None]
    q = xp.clip(xp.round(x * inverse), scheme.qmin - z, scheme.qmax - z)
    err = q * scales[:, :, None] - x
    return xp.sum(err * err, axis=2)


# -- histogram methods ---------------------------------------------------------------------------
def histograms(xp, rows, lo, hi, bins: int):
    """Per-row histograms of rows over [lo, hi] (equal bins, the last one closed), float64."""
    n_rows = rows.shape[0]
    width = hi - lo
    scale = xp.where(
        width > 0, bins / xp.where(width > 0, width, xp.ones_like(width)), xp.zeros_like(width)
    )
    pos = xp.floor((xp.astype(rows, xp.float64) - lo[:, None]) * scale[:, None])
    index = xp.astype(xp.clip(pos, 0, bins - 1), xp.int64)
    offsets = xp.arange(n_rows, device=_xp.device(rows), dtype=xp.int64)[:, None] * bins
    return _xp.bincount_rows(xp, index + offsets, None, n_rows, bins)


def entropy(xp, rows, scheme: QuantScheme, tensor_scale=None, bins: int = 2048):
    """TensorRT's KL-divergence threshold, on a histogram of |x| per group."""
    lo, hi = minmax(xp, rows, scheme)
    amax = xp.maximum(-lo, hi)
    hist = histograms(xp, xp.abs(rows), xp.zeros_like(amax), amax, bins)
    t = entropy_thresholds(xp, hist, amax, positive_levels(scheme))
    return xp.maximum(lo, -t), xp.minimum(hi, t)


def entropy_thresholds(xp, hist, top, levels: int):
    """Per row, the |x| threshold that minimises KL(P || Q) for a histogram of |x| from 0 to
    ``top`` (per row).

    For each candidate bin count i (from ``levels`` up, at most 256 candidates): P is the
    histogram cut at i with the outliers added to its last bin; Q squeezes the first i bins
    into ``levels`` chunks of i // levels bins (the last chunk takes the remainder), each
    chunk's count spread evenly over its non-empty bins.
    """
    n_rows, n = hist.shape
    if n <= levels:
        return top
    dev = _xp.device(hist)
    candidates = np.unique(np.linspace(levels, n, min(256, n - levels + 1)).astype(int))
    zero = xp.zeros((n_rows, 1), dtype=xp.float64, device=dev)
    cum = xp.concat([zero, xp.cumulative_sum(hist, axis=1)], axis=1)  # cum[:, i] = sum(h[:i])
    nonzero = xp.astype(hist > 0, xp.float64)
    cum_nz = xp.concat([zero, xp.cumulative_sum(nonzero, axis=1)], axis=1)
    total = cum[:, n]
    kls = []
    for i in candidates:
        step = i // levels
        bounds = np.minimum(np.arange(levels + 1) * step, i)
        bounds[-1] = i
        b = _xp.asarray_like(xp, bounds, hist, xp.int64)
        totals = xp.take(cum, b[1:], axis=1) - xp.take(cum, b[:-1], axis=1)
        counts = xp.take(cum_nz, b[1:], axis=1) - xp.take(cum_nz, b[:-1], axis=1)
        chunk = _xp.asarray_like(xp, np.minimum(np.arange(i) // step, levels - 1), hist, xp.int64)
        spread = xp.take(totals / xp.maximum(counts, 1.0), chunk, axis=1)
        q = xp.where(nonzero[:, :i] > 0, spread, xp.zeros_like(spread))
        p = hist[:, :i]
        p = xp.concat([p[:, :-1], p[:, -1:] + (total - cum[:, i])[:, None]], axis=1)
        kls.append(_kl(xp, p, q))
    best = first_least(xp, xp.stack(kls, axis=1))
    chosen = xp.take(_xp.asarray_like(xp, candidates, hist, xp.float64), best)
    return top * chosen / n


def _kl(xp, p, q):
    """KL(P || Q) per row of two unnormalised histograms (inf where either is empty)."""
    p_sum = xp.sum(p, axis=1, keepdims=True)
    q_sum = xp.sum(q, axis=1, keepdims=True)
    pn = p / xp.where(p_sum > 0, p_sum, xp.ones_like(p_sum))
    qn = q / xp.where(q_sum > 0, q_sum, xp.ones_like(q_sum))
    qn = xp.where(qn > 0, qn, xp.full_like(qn, 1e-12))  # smoothing where P has mass and Q none
    safe = xp.where(pn > 0, pn, xp.ones_like(pn))
    kl = xp.sum(xp.where(pn > 0, pn * xp.log(safe / qn), xp.zeros_like(pn)), axis=1)
    empty = (p_sum[:, 0] == 0) | (q_sum[:, 0] == 0)
    return xp.where(empty, xp.full_like(kl, float("inf")), kl)


def l2_histogram(xp, rows, scheme: QuantScheme, tensor_scale=None, bins: int = 2048):
    """The histogram range of least estimated L2 error, shrunk a bin at a time."""
    lo0, hi0 = minmax(xp, rows, scheme)
    levels = num_levels(scheme)
    if scheme.mapping is Mapping.SYMMETRIC:
        a = xp.maximum(-lo0, hi0)
        top = xp.where(a > 0, a, xp.ones_like(a))
        hist = histograms(xp, xp.abs(rows), xp.zeros_like(top), top, bins)
        _, t = l2_ranges(xp, hist, xp.zeros_like(top), top, levels, symmetric=True)
        return xp.maximum(-t, lo0), xp.minimum(t, hi0)
    top = xp.where(hi0 > lo0, hi0, lo0 + 1)
    hist = histograms(xp, rows, lo0, top, bins)
    lo, hi = l2_ranges(xp, hist, lo0, top, levels, symmetric=False)
    return xp.maximum(lo, lo0), xp.minimum(hi, hi0)


def l2_ranges(xp, hist, first, last, levels: int, symmetric: bool):
    """Per row, the range [lo, hi] (bin edges) of least estimated L2 quantization error, for
    histograms over [first, last] (per row).

    The error of a candidate range is, per bin, (count) x (mean square distance): to the grid
    step's uniform noise Delta^2 / 12 inside the range, and to the nearer edge outside (each
    bin's values taken as uniform over the bin). Prefix sums make every candidate O(1).
    Symmetric: a histogram of |x| from 0, where only the top edge moves (all candidates);
    otherwise both edges move, from whichever side lowers the error more.
    """
    n_rows, n = hist.shape
    dev = _xp.device(hist)
    width = (last - first) / n
    steps = xp.arange(n + 1, dtype=xp.float64, device=dev)
    edges = first[:, None] + width[:, None] * steps[None, :]
    mid = (edges[:, :-1] + edges[:, 1:]) / 2
    zero = xp.zeros((n_rows, 1), dtype=xp.float64, device=dev)

    def prefix(a):
        return xp.concat([zero, xp.cumulative_sum(a, axis=1)], axis=1)

    s0, s1, s2 = prefix(hist), prefix(hist * mid), prefix(hist * mid * mid)
    spread = (width * width / 12)[:, None]

    def at(a, i):  # a[row, i[row]] for per-row column indices (n_rows, k)
        return xp.take_along_axis(a, i, axis=1)

    def error(i, j):
        lo_e, hi_e = at(edges, i), at(edges, j)
        s0i, s0j = at(s0, i), at(s0, j)
        left = at(s2, i) - 2 * lo_e * at(s1, i) + lo_e * lo_e * s0i + s0i * spread
        n_r = s0[:, n:] - s0j
        right = (s2[:, n:] - at(s2, j)) - 2 * hi_e * (s1[:, n:] - at(s1, j))
        right = right + hi_e * hi_e * n_r + n_r * spread
        span = (hi_e - lo_e) * (2 if symmetric else 1)
        step = span / max(levels - 1, 1)
        inside = (s0j - s0i) * step * step / 12
        return (0.0 if symmetric else left) + right + inside

    if symmetric:
        j = xp.broadcast_to(xp.arange(1, n + 1, device=dev, dtype=xp.int64)[None, :], (n_rows, n))
        best = first_least(xp, error(xp.zeros_like(j), j)) + 1
        return xp.zeros_like(first), xp.take_along_axis(edges, best[:, None], axis=1)[:, 0]
    i = xp.zeros((n_rows, 1), dtype=xp.int64, device=dev)
    j = xp.full((n_rows, 1), n, dtype=xp.int64, device=dev)
    best_err = error(i, j)
    best_i, best_j = i, j
    for _ in range(n - 1):
        left, right = error(i + 1, j), error(i, j - 1)
        move_left = left <= right
        i = xp.where(move_left, i + 1, i)
        j = xp.where(move_left, j, j - 1)
        e = xp.minimum(left, right)
        better = e < best_err
        best_err = xp.where(better, e, best_err)
        best_i, best_j = xp.where(better, i, best_i), xp.where(better, j, best_j)
    return at(edges, best_i)[:, 0], at(edges, best_j)[:, 0]


def num_levels(scheme: QuantScheme) -> int:
    """How many values the grid has."""
    if scheme.kind == "int":
        return scheme.qmax - scheme.qmin + 1
    return len(grid.grid_values(scheme))


def positive_levels(scheme: QuantScheme) -> int:
    if scheme.kind == "int":
        return scheme.qmax
    return int(np.count_nonzero(grid.grid_values(scheme) > 0))


# -- registry ------------------------------------------------------------------------------------
IMPLEMENTATIONS: dict[str, Callable[..., Any]] = {
    "minmax": minmax,
    "percentile": percentile,
    "mse": mse,
    "search": search,
    "entropy": entropy,
    "l2_histogram": l2_histogram,
}


def calibrate(xp, rows, scheme: QuantScheme, tensor_scale=None):
    """Run the scheme's method on a block of groups: per-row (lo, hi), float64."""
    return IMPLEMENTATIONS[scheme.method](xp, rows, scheme, tensor_scale, **scheme.method_options)
