"""numba kernels for integer quantization; imported only by ``_kernels``."""

import numba
import numpy as np


@numba.njit(parallel=True, cache=True)
def quantize_int(rows, scale, zero_point, qmin, qmax, out):
    """out[i, j] = clip(rint(rows[i, j] / scale[i]) + zero_point[i], qmin, qmax)."""
    for i in numba.prange(rows.shape[0]):
        s = scale[i]
        z = zero_point[i]
        for j in range(rows.shape[1]):
            q = 0.0
            if s != 0.0:
                q = np.rint(np.float64(rows[i, j]) / s)
            q = min(max(q + z, qmin), qmax)
            out[i, j] = q


@numba.njit(parallel=True, cache=True)
def mse_search_int(rows, scales, zero_points, qmin, qmax, best):
    """best[i] = the column k of scales[i, k] whose quantization of row i has the least
    squared error (the first on ties)."""
    n = rows.shape[1]
    for i in numba.prange(rows.shape[0]):
        best_err = np.inf
        best_k = 0
        for k in range(scales.shape[1]):
            s = scales[i, k]
            z = zero_points[i, k]
            err = 0.0
            for j in range(n):
                x = np.float64(rows[i, j])
                q = 0.0
                if s != 0.0:
                    q = np.rint(x / s)
                q = min(max(q + z, qmin), qmax)
                d = (q - z) * s - x
                err += d * d
            if err < best_err:
                best_err = err
                best_k = k
        best[i] = best_k
