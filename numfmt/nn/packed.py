"""Products with a weight held as packed int codes, without decoding it to float first.

A :class:`~numfmt.nn.modules.QuantLinear` on the CPU whose weight has codes of 8 bits, or of 4
bits packed two to a byte, scaled per tensor, per output channel or in groups along its input
axis (an int grid: symmetric, with zero points, or with minima as GGUF's Q4_1; a float or
codebook grid by its table of levels: FP8, FP4, MXFP4, NVFP4, NF4), multiplies float32 inputs
by its codes directly (``_linear_jit``): it reads a quarter (int8) or an eighth (int4) of the
float weight's bytes and keeps no float copy. For a few rows at a time (generating token by
token) that is the whole product; for many (scoring a window) the weight is decoded once per
call by a one-pass kernel and multiplied by torch's own matmul, whose speed a kernel of ours
would not reach. The decode gives the same floats as the torch decode it replaces; the direct
product differs from ``x @ decoded.T`` only in the rounding of float32 sums (bounded in the
tests). bfloat16 and float16 inputs are multiplied in float32 and rounded once to their dtype.
A table's levels are looked up code by code, which is slower than a float matmul on the CPU:
inside ``decoded_weights`` (generating) those layers decode once instead (:func:`lean`).

:func:`plan` says which path a layer takes, and why not the kernel where it cannot
(:class:`SlowPathWarning`, once per reason in a process, when the slow path runs).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from numfmt.errors import SlowPathWarning
from numfmt.quant.granularity import PerAxis, PerGroup, PerTensor

if TYPE_CHECKING:
    from numfmt.nn.modules import _Quantized

#: At most this many rows (tokens) are multiplied by the codes directly; more decode the
#: weight once and call torch's matmul.
DIRECT_ROWS = 8
#: Products of fewer multiply-adds than this run on the calling thread (waking the thread
#: pool costs more than the work).
PARALLEL_WORK = 1 << 17


@dataclass(frozen=True)
class Layout:
    """A layer's weight as the kernels take it (numpy views of its buffers where possible)."""

    bits: int  # 8, or 4 (packed low nibble first, rows of K / 2 bytes)
    signed: bool
    levels64: np.ndarray  # a float or codebook grid's levels by code (float64); empty: int
    levels32: np.ndarray | None  # the levels in float32, None where float32 cannot hold them
    group: int  # codes per scale along the input axis
    codes: np.ndarray  # (N, K) or (N, K / 2)
    scale64: np.ndarray  # (N, groups) float64
    zero: np.ndarray  # (N, groups) int32, or empty
    minimum64: np.ndarray  # (N, groups) float64, or empty
    scale32: np.ndarray | None  # float32 when the scales are float32 numbers, else None
    outer: float  # a tensor scale over the groups' (NVFP4), else 1
    minimum32: np.ndarray | None


def _why_not(layer: _Quantized) -> str | None:
    """Why the kernels cannot take this layer's weight (None: they can)."""
    from numfmt.formats import _kernels

    s = layer.scheme
    if s.bits not in (4, 8):
        return f"the packed kernels take 4- and 8-bit codes, not {s.bits}-bit ({s})"
    if len(layer.weight_shape) != 2:
        return "the packed kernels take a 2-D weight"
    n_in = layer.weight_shape[1]
    g = s.granularity
    per_input = isinstance(g, PerAxis) and g.axis % 2 == 1
    groups_across = isinstance(g, PerGroup) and g.axis % 2 == 0
    if per_input or groups_across:
        return f"the packed kernels take scales per output channel or groups along the input ({s})"
    if s.bits == 4 and (n_in % 2 or (isinstance(g, PerGroup) and g.size % 2)):
        return "4-bit codes pack whole bytes per row only for an even input size and group"
    if layer.codes.device.type != "cpu":
        return f"the packed kernels run on the CPU, not {layer.codes.device.type}"
    if not _kernels.available():
        return "numba is not installed"
    return None


def layout(layer: _Quantized) -> Layout | str:
    """The layer's weight laid out for the kernels, or why it cannot be."""
    why = _why_not(layer)
    if why is not None:
        return why
    n_out, n_in = layer.weight_shape
    g = layer.scheme.granularity
    group = g.size if isinstance(g, PerGroup) else n_in

    def per_group(t: torch.Tensor | None, dtype) -> np.ndarray:
        if t is None:
            return np.empty((0, 1), dtype)
        a = t.detach().to(torch.float64 if dtype == np.float64 else torch.int64).numpy()
        if isinstance(g, PerTensor):
            a = np.broadcast_to(a.reshape(1, 1), (n_out, 1))
        return np.ascontiguousarray(a.reshape(n_out, -1), dtype=dtype)

    own = per_group(layer.scale, np.float64)
    outer = 1.0 if layer.tensor_scale is None else float(layer.tensor_scale.double().reshape(()))
    # NVFP4's second level: multiplied into the scales as the decode does; the product
    # applies it to the sums (a float32 number, as the tensor scale is held)
    scale64 = own * outer if layer.tensor_scale is not None else own
    levels64 = np.empty(0)
    if layer.scheme.kind != "int":
        from numfmt.quant.grid import grid_table

        levels64 = np.array(grid_table(layer.scheme), dtype=np.float64)
    minimum64 = per_group(layer.minimum, np.float64)
    codes = layer.codes.detach().numpy()
    codes = codes.reshape(n_out, n_in // 2 if layer.scheme.bits == 4 else n_in)

    def exact32(a: np.ndarray) -> np.ndarray | None:
        b = a.astype(np.float32)
        return b if np.array_equal(b, a, equal_nan=True) else None

    return Layout(
        bits=layer.scheme.bits,
        signed=layer.scheme.kind == "int" and layer.scheme.qmin < 0,
        levels64=levels64,
        levels32=exact32(levels64),
        group=group,
        codes=codes,
        scale64=scale64,
        zero=per_group(layer.zero_point, np.int32),
        minimum64=minimum64,
        scale32=exact32(own),
        outer=outer,
        minimum32=exact32(minimum64) if minimum64.size else minimum64.astype(np.float32),
    )


def decode(lay: Layout, dtype: torch.dtype, rows: torch.Tensor | None = None) -> torch.Tensor:
    """The weight (or its ``rows``, int64 indices the caller has checked) in float32 or
    float64, as the torch decode computes it, in one pass."""
    from numfmt.nn import _linear_jit as jit

    n_out = lay.codes.shape[0]
    n_in = lay.codes.shape[1] * (2 if lay.bits == 4 else 1)
    which = np.arange(n_out) if rows is None else rows.reshape(-1).numpy()
    out = np.empty((which.size, n_in), np.float32 if dtype == torch.float32 else np.float64)
    args = (lay.levels64, lay.scale64, lay.zero, lay.minimum64, lay.group, out)
    if lay.bits == 8:
        jit.decode8(lay.codes, which, *args)
    else:
        jit.decode4(lay.codes, which, lay.signed, *args)
    return torch.from_numpy(out)


def direct(lay: Layout) -> bool:
    """Whether the layout's scales, minima and levels are float32 numbers, as the product
    needs."""
    return lay.scale32 is not None and lay.minimum32 is not None and lay.levels32 is not None


def lean(lay: Layout) -> bool:
    """Whether the product is at least as fast as the decoded weight's, so that a generation
    keeps no decoded copy: an int grid (a table of levels is looked up code by code)."""
    return lay.levels64.size == 0


def linear(lay: Layout, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """x @ w.T (+ bias) from the codes, in float32, rounded once to x's dtype (x on the
    CPU, rows of the layer's input size)."""
    from numfmt.nn import _linear_jit as jit

    assert lay.scale32 is not None and lay.minimum32 is not None  # (``direct``)
    assert lay.levels32 is not None
    n_out = lay.codes.shape[0]
    rows = x.detach().reshape(-1, x.shape[-1])
    if rows.dtype != torch.float32:
        rows = rows.to(torch.float32)
    x32 = rows.numpy()
    if not x32.flags.c_contiguous:
        x32 = np.ascontiguousarray(x32)
    groups = lay.scale32.shape[1]
    xsum = jit.group_sums(x32, lay.group, groups) if lay.minimum32.size else np.empty((0, 1), "f4")
    out = np.empty((x32.shape[0], n_out), np.float32)
    params = (lay.levels32, lay.scale32, lay.zero, lay.minimum32, xsum, lay.group, out)
    small = x32.size * n_out < PARALLEL_WORK
    if lay.bits == 8:
        (jit.linear8_serial if small else jit.linear8)(x32, lay.codes, *params)
    else:
        even = np.ascontiguousarray(x32[:, 0::2])
        odd = np.ascontiguousarray(x32[:, 1::2])
        (jit.linear4_serial if small else jit.linear4)(even, odd, lay.codes, lay.signed, *params)
    if lay.outer != 1.0:
        out *= np.float32(lay.outer)
    y = torch.from_numpy(out).reshape(*x.shape[:-1], n_out)
    if bias is not None:
        y += bias.detach().to(torch.float32)
    return y if x.dtype == torch.float32 else y.to(x.dtype)


_decode_only = 0


@contextlib.contextmanager
def decode_only() -> Iterator[None]:
    """Inside the block, quantized layers multiply through their decoded weight, as torch's
    matmul does with the fake-quantized float weight, bit for bit (and keep it decoded inside
    :func:`~numfmt.nn.modules.decoded_weights`): for comparing with a float model that
    carries the same weights, or timing the packed path against it."""
    global _decode_only
    _decode_only += 1
    try:
        yield
    finally:
        _decode_only -= 1


def active() -> bool:
    """Whether the packed kernels may run (not inside :func:`decode_only`)."""
    return _decode_only == 0


_said: set[str] = set()


def say_once(reason: str) -> None:
    """Warn (SlowPathWarning) the first time in a process that a layer takes the slow path
    for this reason."""
    if reason in _said:
        return
    _said.add(reason)
    warnings.warn(
        f"quantized layers multiply through their decoded float weight: {reason}",
        SlowPathWarning,
        stacklevel=3,
    )
