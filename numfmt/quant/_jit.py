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


@numba.njit(parallel=True, cache=True)
def quantize_int(rows, scale, zero_point, qmin, qmax, out):
    """out[i, j] = clip(rint(rows[i, j] / scale[i]) + zero_point[i], qmin, qmax); NaN gives
    the zero point's code and infinities clip."""
    for i in numba.prange(rows.shape[0]):
        s = scale[i]
        z = zero_point[i]
        for j in range(rows.shape[1]):
            q = 0.0
            if s != 0.0:
                q = np.rint(np.float64(rows[i, j]) / s)
            if q != q:
                q = 0.0
            q = min(max(q + z, qmin), qmax)
            out[i, j] = q


@numba.njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})
def mse_search_int(rows, scales, zero_points, qmin, qmax, best):
    """best[i] = the column k of scales[i, k] whose quantization of row i has the least
    squared error (the first on ties).

    The search multiplies by 1 / scale instead of dividing: a code can then differ from the
    exact quotient's only within a rounding of a tie, which moves no error measurably; the
    chosen scale is then applied exactly by ``quantize``. The error sum may be reassociated
    (so the compiler vectorises it): it differs from an ordered sum in the last bits only.
    """
    n = rows.shape[1]
    for i in numba.prange(rows.shape[0]):
        best_err = np.inf
        best_k = 0
        for k in range(scales.shape[1]):
            s = scales[i, k]
            z = zero_points[i, k]
            inv = 1.0 / s if s != 0.0 else 0.0
            lo = qmin - z
            hi = qmax - z
            err = 0.0
            for j in range(n):
                x = np.float64(rows[i, j])
                q = min(max(np.rint(x * inv), lo), hi)
                d = q * s - x
                err += d * d
            if err < best_err:
                best_err = err
                best_k = k
        best[i] = best_k
