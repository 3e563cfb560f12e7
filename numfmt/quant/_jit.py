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

    Codes come from the exact float64 quotient, as everywhere else, so this kernel and the
    array-namespace path (numpy or torch) see the same codes; the error sum may be reassociated
    (so the compiler vectorises it): it differs from an ordered sum in the last bits only, and
    the caller treats losses within a relative 1e-9 as equal.
    """
    n = rows.shape[1]
    for i in numba.prange(rows.shape[0]):
        for k in range(scales.shape[1]):
            s = scales[i, k]
            z = zero_points[i, k]
            divisor = s if s > 0.0 else np.inf
            lo = qmin - z
            hi = qmax - z
            err = 0.0
            for j in range(n):
                x = np.float64(rows[i, j])
                q = min(max(np.rint(x / divisor), lo), hi)
                d = q * s - x
                err += d * d
            errors[i, k] = err
