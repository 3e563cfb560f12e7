"""Compiled kernels for the hot paths of integer quantization (numba, when installed).

Each function returns None when numba is missing (or for a case it does not cover), and the
caller runs its numpy path; the tests check that both give the same codes.
"""

from __future__ import annotations

import numpy as np

from numfmt.formats import _kernels as _format_kernels
from numfmt.quant.scheme import Mapping, QuantScheme

#: Blocks smaller than this stay in numpy (compiling or loading a kernel costs more).
MIN_SIZE = 1 << 15


def _ready(rows: np.ndarray) -> bool:
    return rows.size >= MIN_SIZE and _format_kernels.available()


def row_minmax(rows) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-row minimum and maximum in one pass (NaN for a row that holds one), or None."""
    if not _ready(rows) or rows.shape[1] == 0:
        return None
    from numfmt.quant import _jit

    lo, hi = np.empty(rows.shape[0]), np.empty(rows.shape[0])
    _jit.row_minmax(np.ascontiguousarray(rows), lo, hi)
    return lo, hi


def quantize_int(rows, scale, zero_point, scheme: QuantScheme) -> np.ndarray | None:
    """Codes of an int target in the smallest signed/unsigned dtype, or None. NaN gives the
    zero point's code and infinities clip, as in the numpy path."""
    if not _ready(rows) or scheme.kind != "int" or scheme.rounding.value != "nearest-even":
        return None
    from numfmt.quant import _jit

    dtype = np.dtype(
        f"{'u' if scheme.mapping is Mapping.ASYMMETRIC else ''}int{8 if scheme.bits <= 8 else 16}"
    )
    out = np.empty(rows.shape, dtype=dtype)
    z = np.zeros(rows.shape[0], np.int64) if zero_point is None else zero_point.astype(np.int64)
    _jit.quantize_int(np.ascontiguousarray(rows), scale, z, scheme.qmin, scheme.qmax, out)
    return out


def mse_search(rows, lo0, hi0, scheme: QuantScheme, ratios: int) -> np.ndarray | None:
    """The best clip ratio per row by exact mean square error, or None."""
    if not _ready(rows):
        return None
    from numfmt.quant import _jit
    from numfmt.quant.calibration import candidate_scales

    r, s, z = candidate_scales(lo0, hi0, scheme, ratios)
    best = np.empty(rows.shape[0], dtype=np.int64)
    _jit.mse_search_int(np.ascontiguousarray(rows), s, z, scheme.qmin, scheme.qmax, best)
    return r[best]
