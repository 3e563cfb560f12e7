"""Compiled kernels for the hot paths of integer quantization on numpy arrays (numba).

Each function returns None for a case it does not cover (a small block, a rounding mode other
than nearest-even, numba missing), and the caller runs the array-namespace path; the tests
check that both give the same codes. Torch tensors never come here: they take the
array-namespace path, in torch operations, on their own device.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from numfmt.formats import _kernels as _format_kernels

if TYPE_CHECKING:
    from numfmt.quant.schemes import QuantScheme

#: Blocks smaller than this stay in numpy (compiling or loading a kernel costs more).
MIN_SIZE = 1 << 15


def _ready(rows: np.ndarray) -> bool:
    return (
        isinstance(rows, np.ndarray)
        and rows.size >= MIN_SIZE
        and rows.dtype in (np.float32, np.float64)
        and _format_kernels.available()
    )


def _int_scheme(scheme: QuantScheme) -> bool:
    return (
        scheme.kind == "int"
        and scheme.rounding.value == "nearest-even"
        and scheme.scale_rule != "gguf"
        and scheme.mapping.value != "float-min"
    )


def row_minmax(rows) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-row minimum and maximum in one pass (NaN for a row that holds one), or None."""
    if not _ready(rows) or rows.shape[1] == 0:
        return None
    from numfmt.quant import _jit

    lo, hi = np.empty(rows.shape[0]), np.empty(rows.shape[0])
    _jit.row_minmax(np.ascontiguousarray(rows), lo, hi)
    return lo, hi


def _zeros(rows, zero_point):
    if zero_point is None:
        return np.zeros(rows.shape[0], np.int64)
    return np.ascontiguousarray(zero_point, dtype=np.int64)


def quantize_int(rows, scale, zero_point, scheme: QuantScheme, dtype) -> np.ndarray | None:
    """Codes of an int target in ``dtype``, or None. NaN gives the zero point's code and
    infinities clip, as in the array-namespace path."""
    if not _ready(rows) or not _int_scheme(scheme):
        return None
    from numfmt.quant import _jit

    out = np.empty(rows.shape, dtype=dtype)
    scale = np.ascontiguousarray(scale, dtype=np.float64)
    _jit.quantize_int(
        np.ascontiguousarray(rows), scale, _zeros(rows, zero_point), scheme.qmin, scheme.qmax, out
    )
    return out


def fake_quantize_int(rows, scale, zero_point, scheme: QuantScheme, dtype) -> np.ndarray | None:
    """dequantize(quantize(rows)) in one pass, in ``dtype`` (float32 or float64), or None."""
    if not _ready(rows) or not _int_scheme(scheme):
        return None
    from numfmt.quant import _jit

    out = np.empty(rows.shape, dtype=dtype)
    scale = np.ascontiguousarray(scale, dtype=np.float64)
    _jit.fake_quantize_int(
        np.ascontiguousarray(rows), scale, _zeros(rows, zero_point), scheme.qmin, scheme.qmax, out
    )
    return out


def mse_errors(rows, scales, zero_points, scheme: QuantScheme) -> np.ndarray | None:
    """Squared error of each row under each candidate scale (rows, candidates), or None."""
    if not _ready(rows) or not _int_scheme(scheme):
        return None
    from numfmt.quant import _jit

    errors = np.empty(scales.shape)
    zeros = (
        np.zeros(scales.shape, np.int64)
        if zero_points is None
        else np.ascontiguousarray(zero_points, dtype=np.int64)
    )
    s = np.ascontiguousarray(scales, dtype=np.float64)
    _jit.mse_errors_int(np.ascontiguousarray(rows), s, zeros, scheme.qmin, scheme.qmax, errors)
    return errors


def pack_nibbles(codes, order: str) -> np.ndarray | None:
    """4-bit codes packed two to a byte in one pass, or None (see ``packing``)."""
    if not isinstance(codes, np.ndarray) or codes.size < MIN_SIZE or codes.dtype.itemsize != 1:
        return None
    if not _format_kernels.available():
        return None
    from numfmt.quant import _jit

    flat = np.ascontiguousarray(codes).reshape(-1)
    out = np.empty(-(-flat.size // 2), dtype=np.uint8)
    _jit.pack_nibbles(flat, out, order == "high_first", order == "ggml")
    return out


def codebook_codes(v: np.ndarray, codebook: np.ndarray) -> np.ndarray | None:
    """Indices of the nearest codebook entries of float64 quotients (ties to the lower), or
    None."""
    if not _ready(v):
        return None
    from numfmt.quant import _jit

    mids = np.ascontiguousarray((codebook[1:] + codebook[:-1]) / 2)
    out = np.empty(v.shape, dtype=np.uint8)
    _jit.codebook_codes(np.ascontiguousarray(v), mids, out)
    return out
