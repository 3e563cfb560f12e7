"""numba kernels for integer quantization; imported only by ``_kernels``."""

import numba
import numpy as np


@numba.njit(parallel=True, cache=True)
def row_minmax(rows, lo, hi):
    """lo[i], hi[i] = min and max of row i in one pass (NaN if the row holds one)."""
    for i in numba.prange(rows.shape[0]):
        a = np.float64(rows[i, 0])
        b = a
        nan = a != a
        for j in range(1, rows.shape[1]):
            v = np.float64(rows[i, j])
            nan |= v != v
            a = min(a, v)
            b = max(b, v)
        lo[i] = np.nan if nan else a
        hi[i] = np.nan if nan else b


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
