"""numba kernels for integer quantization; imported only by ``_kernels``."""

import numba
import numpy as np

from numfmt._numba import serial_twin

#: Lanes of the minimum and maximum kept apart, so that the loop compiles to SIMD.
LANES = 32


@numba.njit(inline="always")
def _range(r, u, magnitude, infinity, a, b, m):
    """(min, max, holds NaN) of one row: selects rather than ``min`` and ``max`` (whose NaN
    rules keep the loop scalar), in ``LANES`` independent lanes so that it compiles to SIMD.
    ``u`` is the row seen as unsigned integers of its width, ``magnitude`` the mask that
    clears the sign bit and ``infinity`` the pattern of +inf: the row holds a NaN when the
    largest magnitude of its bit patterns exceeds infinity's. ``a``, ``b`` and ``m`` are the
    lanes: buffers of ``LANES`` elements (``_lanes``), reused from row to row."""
    n = r.size
    whole = n - n % LANES
    for k in range(LANES):
        a[k] = r[0]
        b[k] = r[0]
        m[k] = 0
    for j in range(0, whole, LANES):
        for k in range(LANES):
            v = r[j + k]
            w = u[j + k] & magnitude
            a[k] = v if v < a[k] else a[k]
            b[k] = v if v > b[k] else b[k]
            m[k] = w if w > m[k] else m[k]
    x = a[0]
    y = b[0]
    z = m[0]
    for j in range(whole, n):
        v = r[j]
        w = u[j] & magnitude
        x = v if v < x else x
        y = v if v > y else y
        z = w if w > z else z
    for k in range(1, LANES):
        x = a[k] if a[k] < x else x
        y = b[k] if b[k] > y else y
        z = m[k] if m[k] > z else z
    return x, y, z > infinity


@numba.njit(inline="always")
def _lanes(rows, bits):
    """The lane buffers of ``_range`` and the one-element cast of ``_int_scale``."""
    cast = np.empty(1, np.float32)
    return (
        np.empty(LANES, rows.dtype),
        np.empty(LANES, rows.dtype),
        np.empty(LANES, bits.dtype),
        cast,
        cast.view(np.uint32),
    )


@numba.njit(inline="always")
def _blocks(n):
    """Blocks of rows for ``prange``: each allocates its buffers once, not once per row."""
    return (n + ROWS_PER_BLOCK - 1) // ROWS_PER_BLOCK


#: Rows that share one set of buffers.
ROWS_PER_BLOCK = 256


@numba.njit(parallel=True, cache=True)
def row_minmax(rows, bits, magnitude, infinity, lo, hi):
    """lo[i], hi[i] = min and max of row i in one pass (NaN if the row holds one)."""
    n = rows.shape[0]
    for block in numba.prange(_blocks(n)):
        a, b, m, _, _ = _lanes(rows, bits)
        for i in range(block * ROWS_PER_BLOCK, min(n, (block + 1) * ROWS_PER_BLOCK)):
            x, y, nan = _range(rows[i], bits[i], magnitude, infinity, a, b, m)
            lo[i] = np.nan if nan else x
            hi[i] = np.nan if nan else y


@numba.njit(inline="always")
def _int_scale(lo, hi, steps, qmin, qmax, asymmetric, top, cast, bits):
    """(scale, zero point, saturated) of an int grid with a float32 scale, rounded up, for
    the range [lo, hi] (as ``grid.scales``). ``steps`` divides the range (the span for
    asymmetric grids, the magnitude otherwise); ``top`` is float32's largest value.

    A scale is never negative, so rounding it up is the cast to float32 (to nearest) plus
    one on its bit pattern where the cast went down: ``cast`` is a one-element float32 array
    and ``bits`` its uint32 view (``np.nextafter`` costs fifty times more). A NaN bound gives
    a NaN scale (not saturated, zero point qmin)."""
    low = lo if lo < 0.0 else 0.0
    high = hi if hi > 0.0 else 0.0
    magnitude = -low if -low > high else high
    v = (high - low if asymmetric else magnitude) / steps
    cast[0] = np.float32(v)
    bits[0] += np.uint32(1) if np.float64(cast[0]) < v else np.uint32(0)
    s = np.float64(cast[0])
    saturated = s > top
    s = top if s > top else s
    if lo != lo or hi != hi:
        s = np.nan  # as the array namespace's path: a NaN range has no scale
        saturated = False
    z = 0.0
    if asymmetric:
        z = np.rint(qmin - low / s) if s > 0.0 else qmin
        z = min(max(z, qmin), qmax)
    return s, z, saturated


@numba.njit(cache=True)
def int_scales(lo, hi, steps, qmin, qmax, asymmetric, top, scale, zero_point, saturated):
    """scale[i], zero_point[i], saturated[i] of the ranges [lo[i], hi[i]] (``_int_scale``)."""
    cast = np.empty(1, np.float32)
    bits = cast.view(np.uint32)
    for i in range(lo.size):
        s, z, over = _int_scale(lo[i], hi[i], steps, qmin, qmax, asymmetric, top, cast, bits)
        scale[i] = s
        saturated[i] = over
        if asymmetric:
            zero_point[i] = z


@numba.njit(inline="always")
def _code(x, s, z, qmin, qmax):
    """clip(rint(x / s) + z, qmin, qmax), the quotient in float64; a dead scale and NaN give
    the zero point's code, infinities clip."""
    q = 0.0
    if s > 0.0:
        q = np.rint(np.float64(x) / s)
    if q != q:
        q = 0.0
    return min(max(q + z, qmin), qmax)


@numba.njit(parallel=True, cache=True)
def quantize_int(rows, scale, zero_point, qmin, qmax, out):
    """out[i, j] = the code of rows[i, j] under scale[i] and zero_point[i]."""
    for i in numba.prange(rows.shape[0]):
        s = scale[i]
        z = zero_point[i]
        for j in range(rows.shape[1]):
            out[i, j] = _code(rows[i, j], s, z, qmin, qmax)


@numba.njit(parallel=True, cache=True)
def fake_quantize_int(rows, scale, zero_point, qmin, qmax, out):
    """out[i, j] = (code - zero_point[i]) * scale[i], computed in float64, stored in out's
    dtype: quantize and dequantize in one pass."""
    for i in numba.prange(rows.shape[0]):
        s = scale[i]
        z = zero_point[i]
        for j in range(rows.shape[1]):
            out[i, j] = (_code(rows[i, j], s, z, qmin, qmax) - z) * s


@numba.njit(inline="always")
def _row_scale(r, u, magnitude, infinity, steps, qmin, qmax, asymmetric, top, a, b, m, cast, bits):
    """(lo, hi, scale, zero point, refused) of one row from its min and max (``_range`` then
    ``_int_scale``); a row that holds NaN or inf is refused with lo NaN, one whose scale
    saturates is refused with its values."""
    lo, hi, nan = _range(r, u, magnitude, infinity, a, b, m)
    if nan or lo == -np.inf or hi == np.inf:
        return np.nan, np.nan, 0.0, 0.0, True
    s, z, over = _int_scale(lo, hi, steps, qmin, qmax, asymmetric, top, cast, bits)
    return np.float64(lo), np.float64(hi), s, z, over


@numba.njit(parallel=True, cache=True)
def fake_quantize_int_minmax(
    rows, bits, magnitude, infinity, steps, qmin, qmax, asymmetric, top, out, inside, refused
):
    """``fake_quantize_int`` with each row's scale chosen from its own min and max on the way
    (``row_minmax`` then ``int_scales``), the row still in cache: one visit of the memory.
    A row that holds NaN or inf, or whose scale saturates, is left unwritten and counted in
    ``refused[i]``, for the caller to take the general path. Where ``inside`` has rows (else
    it is empty), ``inside[i, j]`` says whether the value lies within the grid's clip bounds
    (``grid.clip_bounds``: what the clipped straight-through estimator passes)."""
    mask = inside.shape[0] > 0
    n = rows.shape[0]
    for block in numba.prange(_blocks(n)):
        a, b, m, cast, cast_bits = _lanes(rows, bits)
        for i in range(block * ROWS_PER_BLOCK, min(n, (block + 1) * ROWS_PER_BLOCK)):
            r = rows[i]
            lo, _, s, z, bad = _row_scale(
                r, bits[i], magnitude, infinity, steps, qmin, qmax, asymmetric, top,
                a, b, m, cast, cast_bits,
            )  # fmt: skip
            refused[i] = bad
            if lo != lo:
                continue
            for j in range(r.size):
                out[i, j] = (_code(r[j], s, z, qmin, qmax) - z) * s
            if mask:
                below = (qmin - 0.5 - z) * s
                above = (qmax + 0.5 - z) * s
                for j in range(r.size):
                    v = np.float64(r[j])
                    inside[i, j] = v >= below and v <= above


@numba.njit(parallel=True, cache=True)
def quantize_int_minmax(
    rows,
    bits,
    magnitude,
    infinity,
    steps,
    qmin,
    qmax,
    asymmetric,
    top,
    codes,
    scale,
    zero,
    lo_hi,
    refused,
):
    """``fake_quantize_int_minmax`` that keeps the codes (``codes[i, j]``) and each row's
    scale, zero point and range (``scale[i]``, ``zero[i]``, ``lo_hi[i] = min, max``) instead
    of the values they decode to: what an integer matmul, or ``quantize_tensor``, takes. Rows
    refused there are refused here."""
    n = rows.shape[0]
    for block in numba.prange(_blocks(n)):
        a, b, m, cast, cast_bits = _lanes(rows, bits)
        for i in range(block * ROWS_PER_BLOCK, min(n, (block + 1) * ROWS_PER_BLOCK)):
            r = rows[i]
            lo, hi, s, z, bad = _row_scale(
                r, bits[i], magnitude, infinity, steps, qmin, qmax, asymmetric, top,
                a, b, m, cast, cast_bits,
            )  # fmt: skip
            refused[i] = bad
            if lo != lo:
                continue
            scale[i] = s
            zero[i] = z
            lo_hi[i, 0] = lo
            lo_hi[i, 1] = hi
            for j in range(r.size):
                codes[i, j] = _code(r[j], s, z, qmin, qmax)


@numba.njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})
def mse_errors_int(rows, scales, zero_points, qmin, qmax, errors):
    """errors[i, k] = the squared error of row i quantized under scales[i, k].

    The search multiplies by 1 / scale instead of dividing (a hundred candidates make the
    division the bottleneck), as the array-namespace search does, so both see the same codes;
    a code can differ from the exact quotient's only at a rounding of a tie, which moves no
    error measurably, and the chosen scale is then applied exactly by ``quantize``. The error
    sum may be reassociated (so the compiler vectorises it): it differs from an ordered sum in
    the last bits only, and the caller treats losses within a relative 1e-9 as equal.
    """
    n = rows.shape[1]
    for i in numba.prange(rows.shape[0]):
        for k in range(scales.shape[1]):
            s = scales[i, k]
            z = zero_points[i, k]
            inv = 1.0 / s if s > 0.0 else 0.0
            lo = qmin - z
            hi = qmax - z
            err = 0.0
            for j in range(n):
                x = np.float64(rows[i, j])
                q = min(max(np.rint(x * inv), lo), hi)
                d = q * s - x
                err += d * d
            errors[i, k] = err


@numba.njit(parallel=True, cache=True)
def pack_nibbles(codes, out, high_first, ggml):
    """Two 4-bit codes to a byte: adjacent pairs (the first in the low nibble, or the high one
    with high_first), or in ggml's blocks of 32 element j with element j + 16."""
    for k in numba.prange(out.size):
        if ggml:
            block, j = k // 16, k % 16
            a = codes[block * 32 + j]
            b = codes[block * 32 + j + 16]
        else:
            a = codes[2 * k]
            b = codes[2 * k + 1] if 2 * k + 1 < codes.size else 0
        lo = np.uint8(a) & np.uint8(15)
        hi = np.uint8(b) & np.uint8(15)
        out[k] = (hi | (lo << np.uint8(4))) if high_first else (lo | (hi << np.uint8(4)))


@numba.njit(parallel=True, cache=True)
def codebook_codes(v, mids, out):
    """out[i, j] = how many midpoints lie below v[i, j]: the index of the nearest codebook
    entry, a tie going to the lower one (searchsorted(mids, v, side="left"))."""
    for i in numba.prange(v.shape[0]):
        for j in range(v.shape[1]):
            x = v[i, j]
            k = 0
            for m in mids:
                k += x > m
            out[i, j] = k


#: The sums error_sums keeps per row, in this order (``numfmt.quant.report``'s names).
SUMS = ("n", "sq", "abs", "signal", "signal_q", "dot", "clipped", "clipped_sq", "max")


@numba.njit(inline="always")
def _add(acc, x, q, lo, hi):
    """One element's share of its row's sums (acc: SUMS, in their order)."""
    err = q - x
    sq = err * err
    acc[0] += 1.0
    acc[1] += sq
    acc[2] += abs(err)
    acc[3] += x * x
    acc[4] += q * q
    acc[5] += x * q
    if x < lo or x > hi:
        acc[6] += 1.0
        acc[7] += sq
    acc[8] = max(acc[8], abs(err))


@numba.njit(parallel=True, cache=True)
def error_sums_int(rows, codes, scale, zero, minimum, lo, hi, omit, out, bad):
    """Per row i: SUMS of rows[i] against the values its codes stand for, (code - zero) * scale
    (+ minimum), decoded as ``grid.dequantize_rows`` does, in float64, in one pass. Elements
    of rows that are not finite are skipped with omit, else counted in bad[i]."""
    for i in numba.prange(rows.shape[0]):
        acc = np.zeros(9)
        s, z, m = scale[i], np.float64(zero[i]), minimum[i]
        for j in range(rows.shape[1]):
            x = np.float64(rows[i, j])
            if not np.isfinite(x):
                bad[i] += 1
                if omit:
                    continue
            q = (np.float64(codes[i, j]) - z) * s + m
            _add(acc, x, q, lo[i], hi[i])
        out[i, :] = acc


@numba.njit(parallel=True, cache=True)
def error_sums_table(rows, codes, table, scale, lo, hi, omit, out, bad):
    """error_sums_int for a float or codebook grid: the value of code c is table[c] * scale.
    A code past the table, or one whose table entry is NaN (no value quantize gives), makes
    the row's sums NaN and is not used."""
    top = table.size
    for i in numba.prange(rows.shape[0]):
        acc = np.zeros(9)
        s = scale[i]
        for j in range(rows.shape[1]):
            x = np.float64(rows[i, j])
            c = np.int64(codes[i, j])
            if c < 0 or c >= top or np.isnan(table[c]):
                acc[1] = np.nan
                continue
            if not np.isfinite(x):
                bad[i] += 1
                if omit:
                    continue
            _add(acc, x, table[c] * s, lo[i], hi[i])
        out[i, :] = acc


#: ``fake_quantize_int_minmax`` on the calling thread, for small tensors (a QAT step's layers).
fake_quantize_int_minmax_serial = serial_twin(
    fake_quantize_int_minmax, "fake_quantize_int_minmax_serial"
)
quantize_int_minmax_serial = serial_twin(quantize_int_minmax, "quantize_int_minmax_serial")
