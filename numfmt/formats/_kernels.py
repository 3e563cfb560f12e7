"""Compiled array kernels, built with numba (a core dependency where numba has wheels).

The encoder compiles ``_core.encode_one`` itself, so the compiled path and the exact scalar path
run the same arithmetic; the numpy path in ``encode.py`` is checked against both in the tests.
numba is imported only when a large array first needs it (the CLI's scalar commands never do),
and it caches the compiled kernels on disk.
"""

from __future__ import annotations

import importlib.util

import numpy as np


def available() -> bool:
    """Whether numba can be imported."""
    return importlib.util.find_spec("numba") is not None


def encode_float(x: np.ndarray, out: np.ndarray, plan: tuple[int, ...], u: np.ndarray) -> int:
    """Encode float64 or float32 x into out (codes); return how many inputs the plan refused."""
    from numfmt.formats import _jit

    kernel = _jit.encode_f32 if x.dtype == np.float32 else _jit.encode_f64
    return int(kernel(np.ascontiguousarray(x), out, plan, u))


def take(table: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """table[codes], on every core."""
    from numfmt.formats import _jit

    out = np.empty(codes.shape, dtype=table.dtype)
    _jit.take(table, codes.reshape(-1), out.reshape(-1))
    return out


def round_prefix(
    x: np.ndarray, out: np.ndarray, shift: int, nan_pos: int, nan_neg: int, via_float32: bool
) -> None:
    """Round x to the format made of the top bits of x's format (of float32's, via_float32),
    nearest-even."""
    from numfmt.formats import _jit

    if via_float32:
        args = (np.uint32(shift), np.uint32(nan_pos), np.uint32(nan_neg))
        _jit.round_prefix_via_float32(np.ascontiguousarray(x), out, *args)
        return
    width = x.dtype.itemsize * 8
    bits = np.ascontiguousarray(x).view(np.uint32 if width == 32 else np.uint64)
    inf_bits = 0x7F800000 if width == 32 else 0x7FF0000000000000
    u = np.uint64
    _jit.round_prefix(bits, out, u(shift), u(inf_bits), u(1 << (width - 1)), u(nan_pos), u(nan_neg))
