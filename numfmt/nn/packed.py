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

On CUDA the same layers take one Triton kernel (``_linear_triton``, :func:`device_linear`)
for a few rows, with the same arithmetic (float32 sums per group, scaled once) from the
codes on the device (:class:`DeviceLayout`); many rows decode the weight for torch's matmul.

:func:`layout` says which path a layer takes, or why not a kernel where none can
(:class:`SlowPathWarning`, once per reason in a process, when the slow path runs).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from numfmt.errors import NumfmtError, slow_path_once
from numfmt.quant import _kernels
from numfmt.quant.granularity import PerAxis, PerGroup, PerTensor, PerToken
from numfmt.quant.qparams import QParams, choose_qparams, quantize

if TYPE_CHECKING:
    from numfmt.nn.modules import _Quantized
    from numfmt.quant.schemes import QuantScheme

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


@dataclass(frozen=True)
class DeviceLayout:
    """A layer's weight as the Triton kernel takes it (``_linear_triton``): tensors on the
    layer's GPU, the fields of :class:`Layout` that the product reads."""

    bits: int
    signed: bool
    levels64: np.ndarray  # the levels by code (float64, on the host); empty: an int grid
    levels32: torch.Tensor | None  # the levels in float32 on the device, None: not exact
    group: int
    codes: torch.Tensor  # (N, K) or (N, K / 2) bytes
    scale32: torch.Tensor | None  # (N, groups) float32, None where float32 does not hold them
    zero: torch.Tensor  # (N, groups) int32, or empty
    minimum32: torch.Tensor | None  # (N, groups) float32, or empty; None: not exact
    outer: float


def _scheme_why(layer: _Quantized) -> str | None:
    """Why no packed kernel takes this layer's scheme or shape, wherever it is (None: one
    does)."""
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
    return None


def _why_not(layer: _Quantized) -> str | None:
    """Why the host's kernels cannot take this layer's weight (None: they can)."""
    from numfmt.formats import _kernels as _format_kernels

    why = _scheme_why(layer)
    if why is not None:
        return why
    if layer.codes.device.type != "cpu":
        return f"the packed kernels run on the CPU and CUDA, not {layer.codes.device.type}"
    if not _format_kernels.available():
        return "numba is not installed"
    return None


def device_layout(layer: _Quantized) -> DeviceLayout | str:
    """The layer's weight laid out for the Triton kernel, on its device, or why it cannot
    be (one wait for the device, to check that float32 holds the scales)."""
    import importlib.util

    why = _scheme_why(layer)
    if why is not None:
        return why
    if importlib.util.find_spec("triton") is None:
        return "Triton is not installed (it comes with torch's CUDA builds)"
    n_out, n_in = layer.weight_shape
    g = layer.scheme.granularity
    dev = layer.codes.device

    def per_group(t: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor:
        if t is None:
            return torch.empty(0, dtype=dtype, device=dev)
        if isinstance(g, PerTensor):
            t = t.reshape(1, 1).expand(n_out, 1)
        return t.reshape(n_out, -1).to(dtype).contiguous()

    def exact32(t: torch.Tensor) -> torch.Tensor | None:
        b = t.to(torch.float32)
        same = (b.to(t.dtype) == t) | (torch.isnan(b) & torch.isnan(t))  # (NaN levels)
        return b if bool(same.all()) else None

    levels64 = np.empty(0)
    levels32: torch.Tensor | None = torch.empty(0, dtype=torch.float32, device=dev)
    if layer.scheme.kind != "int":
        from numfmt.quant.grid import grid_table

        levels64 = np.array(grid_table(layer.scheme), dtype=np.float64)
        levels32 = exact32(torch.from_numpy(levels64)) if levels64.size <= 256 else None
        levels32 = None if levels32 is None else levels32.to(dev)
    outer = 1.0 if layer.tensor_scale is None else float(layer.tensor_scale.reshape(()))
    scale = per_group(layer.scale, layer.scale.dtype)
    minimum = per_group(layer.minimum, torch.float64)
    return DeviceLayout(
        bits=layer.scheme.bits,
        signed=layer.scheme.kind == "int" and layer.scheme.qmin < 0,
        levels64=levels64,
        levels32=levels32,
        group=g.size if isinstance(g, PerGroup) else n_in,
        codes=layer.codes.reshape(n_out, -1).contiguous(),  # (the kernel reads rows densely)
        scale32=exact32(scale) if outer == float(np.float32(outer)) else None,
        zero=per_group(layer.zero_point, torch.int32),
        minimum32=exact32(minimum),
        outer=outer,
    )


def layout(layer: _Quantized) -> Layout | DeviceLayout | str:
    """The layer's weight laid out for the kernels (the host's, or on CUDA the Triton
    kernel's), or why it cannot be."""
    if layer.codes.device.type == "cuda":
        return device_layout(layer)
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


def direct(lay: Layout | DeviceLayout) -> bool:
    """Whether the layout's scales, minima and levels are float32 numbers, as the product
    needs."""
    return lay.scale32 is not None and lay.minimum32 is not None and lay.levels32 is not None


def lean(lay: Layout | DeviceLayout) -> bool:
    """Whether the product is at least as fast as the decoded weight's, so that a generation
    keeps no decoded copy: an int grid (a table of levels is looked up code by code)."""
    return lay.levels64.size == 0


def linear(
    lay: Layout | DeviceLayout, x: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor | None:
    """x @ w.T (+ bias) from the codes, in float32, rounded once to x's dtype (x on the
    layout's device, rows of the layer's input size); None where the GPU's kernel could not
    run (said once: the caller decodes instead)."""
    from numfmt.nn import _linear_jit as jit

    if isinstance(lay, DeviceLayout):
        return device_linear(lay, x, bias)

    assert lay.scale32 is not None and lay.minimum32 is not None  # (``direct``)
    assert lay.levels32 is not None
    n_out = lay.codes.shape[0]
    rows = x.detach().reshape(-1, _check_width(lay, x))
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


def _check_width(lay: Layout | DeviceLayout, x: torch.Tensor) -> int:
    """x's feature count, which must be the layer's input size (the kernels read the codes'
    rows at that stride)."""
    n_in = lay.codes.shape[1] * (2 if lay.bits == 4 else 1)
    if x.shape[-1] != n_in:
        raise NumfmtError(f"the input has {x.shape[-1]} features; the layer takes {n_in}")
    return n_in


#: Outputs a program of the GPU's kernel computes (for each of the few rows of x).
DEVICE_BLOCK_N = 16


def device_linear(
    lay: DeviceLayout, x: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor | None:
    """``linear`` on the GPU: one Triton kernel reads the codes once for the few rows of x
    (at most ``DIRECT_ROWS``); None (said once) where Triton cannot build or launch it."""
    from numfmt.quant import _gpu

    try:
        from numfmt.nn import _linear_triton
    except Exception as exc:  # a broken install: the decode path runs
        say_once(f"Triton does not import ({type(exc).__name__}: {exc})")
        return None
    assert lay.scale32 is not None and lay.minimum32 is not None  # (``direct``)
    assert lay.levels32 is not None
    n_out = lay.codes.shape[0]
    k = _check_width(lay, x)
    rows = x.detach().reshape(-1, k)
    rows = (rows if rows.dtype == torch.float32 else rows.to(torch.float32)).contiguous()
    m = rows.shape[0]
    out = torch.empty((m, n_out), dtype=torch.float32, device=rows.device)
    block_m = _gpu.pow2(max(m, 1))
    block_k = max(16, min(128, _gpu.pow2(lay.group), 4096 // (block_m * 16)))
    b = lay.scale32 if bias is None else bias.detach().contiguous()  # (not read without one)
    args = (
        rows, lay.codes, lay.levels32, lay.scale32, lay.zero, lay.minimum32, b, out,
        m, n_out, k, lay.outer,
    )  # fmt: skip
    options = dict(
        G=lay.scale32.shape[1], GROUP=lay.group, BITS=lay.bits, SIGNED=lay.signed,
        TABLE=lay.levels64.size > 0, ZERO=lay.zero.numel() > 0, MIN=lay.minimum32.numel() > 0,
        SCALED=lay.outer != 1.0, BIAS=bias is not None, BLOCK_M=block_m,
        BLOCK_N=DEVICE_BLOCK_N, BLOCK_K=block_k,
    )  # fmt: skip
    programs = _gpu.cdiv(n_out, DEVICE_BLOCK_N)
    if not _gpu.launch(_linear_triton.linear_kernel, programs, args, options, say_once):
        return None
    y = out.reshape(*x.shape[:-1], n_out)
    return y if x.dtype == torch.float32 else y.to(x.dtype)


def integer(lay: Layout) -> str | None:
    """Why the integer matmul cannot take this weight (None: it can): it takes 8-bit int
    codes, symmetric, one scale per output channel or per tensor."""
    return _integer_why(
        lay.bits == 8 and lay.levels64.size == 0 and lay.outer == 1.0,
        lay.signed and not lay.zero.size and not lay.minimum64.size and lay.scale64.shape[1] == 1,
        lay.codes.shape[1],
    )


def integer_on_device(layer: _Quantized) -> str | None:
    """``integer`` for a layer on a GPU, from its own tensors (no host layout)."""
    s, g = layer.scheme, layer.scheme.granularity
    k = layer.weight_shape[-1]
    per_row = (
        isinstance(g, PerTensor)
        or (isinstance(g, PerAxis) and g.axis % 2 == 0)
        or (isinstance(g, PerGroup) and g.axis % 2 == 1 and g.size >= k)  # one group a row
    )
    return _integer_why(
        s.kind == "int" and s.bits == 8 and layer.tensor_scale is None,
        s.qmin < 0 and layer.zero_point is None and layer.minimum is None and per_row,
        k,
    )


def _integer_why(int8: bool, symmetric_rows: bool, k: int) -> str | None:
    if not int8:
        return "the integer matmul takes weights of 8-bit int codes"
    if not symmetric_rows:
        return "the integer matmul takes symmetric weights scaled per channel or per tensor"
    if k * 255 * 128 >= 2**31:
        return "the integer matmul's int32 sums would overflow at this input size"
    return None


def _input_why(scheme: QuantScheme) -> str | None:
    """Why the integer matmul cannot take inputs quantized by this scheme (None: it can)."""
    if scheme.kind != "int" or scheme.bits != 8 or scheme.rounding.value != "nearest-even":
        return f"the integer matmul takes 8-bit int inputs rounded to nearest ({scheme})"
    if not isinstance(scheme.granularity, PerToken | PerTensor):
        return f"the integer matmul takes inputs scaled per token or per tensor ({scheme})"
    if scheme.mapping.value == "float-min":
        return f"the integer matmul takes inputs with integer zero points, not minima ({scheme})"
    return None


def _input_rows(x: torch.Tensor, act: QuantScheme | QParams):
    """(the inputs' scheme, x's rows in float32), or why the integer matmul cannot take
    inputs quantized by act."""
    scheme = act.scheme if isinstance(act, QParams) else act
    why = _input_why(scheme)
    if why is not None:
        return why
    rows = x.detach().reshape(-1, x.shape[-1])
    return scheme, rows if rows.dtype == torch.float32 else rows.to(torch.float32)


def input_codes(x: torch.Tensor, act: QuantScheme | QParams):
    """x's rows (CPU) as an integer matmul takes them, quantized exactly as
    ``fake_quantize(x, act, nan_policy="omit")`` does (the same codes, scales and zero
    points; NaN takes the zero point's code, as there, and infinities clip): (codes (M, K)
    int8 or uint8, scales (M,) float64, zero points (M,) int32); or why not, as a string:
    act is not an 8-bit int grid per token or per tensor."""
    got = _input_rows(x, act)
    if isinstance(got, str):
        return got
    scheme, rows = got
    a = np.ascontiguousarray(rows.numpy())
    m = a.shape[0]
    if not isinstance(act, QParams):  # one compiled pass: per token, or the tensor as a row
        per_token = isinstance(scheme.granularity, PerToken)
        done = _kernels.quantize_minmax(a if per_token else a.reshape(1, -1), scheme)
        if done is not None:
            codes, scale, zero = done[0].reshape(a.shape), done[1], done[2].astype(np.int32)
            if scale.size == m:  # per token (np.resize costs more than the kernel here)
                return codes, scale, zero
            return codes, np.full(m, scale[0]), np.full(m, zero[0], np.int32)
    codes, scale, zero = _engine_codes(torch.from_numpy(a), act, scheme)
    return codes.numpy(), scale.numpy().copy(), zero.numpy().astype(np.int32)


def _engine_codes(rows: torch.Tensor, act: QuantScheme | QParams, scheme: QuantScheme):
    """(codes, scales (M,) float64, zero points (M,) int64) of rows by the engine's general
    path, on the rows' device: static ranges, and what the fused kernels decline."""
    m = rows.shape[0]
    qp = act if isinstance(act, QParams) else choose_qparams(rows, scheme, nan_policy="omit")
    codes = quantize(rows, qp)
    scale = qp.effective_scale.to(rows.device, torch.float64).reshape(-1).expand(m)
    zp = qp.zero_point
    zero = (
        torch.zeros(m, dtype=torch.int64, device=rows.device)
        if zp is None
        else zp.to(rows.device, torch.int64).reshape(-1).expand(m)
    )
    return codes, scale, zero


def device_input_codes(x: torch.Tensor, act: QuantScheme | QParams):
    """``input_codes`` for x on a GPU, as tensors there: the fused kernel per token (or the
    tensor as one row), the engine's general path otherwise; or why not, as a string."""
    got = _input_rows(x, act)
    if isinstance(got, str):
        return got
    scheme, rows = got
    if not isinstance(act, QParams):
        from numfmt.quant import _gpu

        per_token = isinstance(scheme.granularity, PerToken)
        # (omit: NaN and infinities as the general path's omit takes them, and no wait for
        # the device to check for them)
        done = _gpu.quantize_minmax(rows if per_token else rows.reshape(1, -1), scheme, omit=True)
        if done is not None:
            m = rows.shape[0]
            return done[0].reshape(rows.shape), done[1].expand(m), done[2].expand(m)
    return _engine_codes(rows, act, scheme)


def device_integer_linear(w_codes, w_scale, codes, scale, zero, bias_codes=None, row_sums=None):
    """``integer_linear`` with torch's integer matmul (``torch._int_mm``, int8 in, int32
    sums: exact) on the tensors' device: w_codes (N, K) int8 symmetric, w_scale (N,) float64,
    the input's codes (M, K) int8 or uint8 with scales (M,) float64 and zero points (M,), or
    None where the inputs are symmetric; bias_codes (M, N) float64 integers or None. uint8
    codes are shifted into int8 (u - z = (u - 128) + (128 - z)), the shift's share added as
    the weight rows' sums times it. Operands are padded with zeros where the CUDA kernel's
    shapes need it (more than 16 rows, K and N multiples of 8). ``row_sums``: the weight
    rows' sums (int64), where the caller keeps them. Returns (M, N) float32, the same floats
    as ``integer_linear``."""
    m, k = codes.shape
    n = w_codes.shape[0]
    a, offset = codes, None  # the codes as int8, and what each row's codes lack of qx - zx
    if codes.dtype != torch.int8:
        a = (codes ^ 128).view(torch.int8)  # u - 128
        offset = torch.full((m,), 128, dtype=torch.int64, device=codes.device)
    if zero is not None:  # (None: symmetric inputs, no wait for the device to ask)
        offset = (0 if offset is None else offset) - zero.to(torch.int64)

    def pad(t, rows, cols):  # (the weight, its shape a multiple of 8 already, is not copied)
        if t.shape == (rows, cols):
            return t
        return torch.nn.functional.pad(t, (0, cols - t.shape[1], 0, rows - t.shape[0]))

    mp, kp, np_ = m if m > 16 else 32, -(-k // 8) * 8, -(-n // 8) * 8
    w = pad(w_codes, np_, kp)
    acc = torch._int_mm(pad(a, mp, kp), w.t())[:m, :n].to(torch.int64)
    if offset is not None:
        if row_sums is None:
            row_sums = w_codes.sum(dim=1, dtype=torch.int64)
        acc += offset[:, None] * row_sums[None, :]
    out = acc.to(torch.float64)
    if bias_codes is not None:
        out += bias_codes
    out *= scale.to(torch.float64)[:, None] * w_scale.to(torch.float64)[None, :]
    return out.to(torch.float32)


def integer_linear(lay: Layout, codes, scale, zero, bias_codes: np.ndarray | None = None):
    """The W8A8 product from input codes (``input_codes``) and the weight's: the sums of
    (qx - zx) * qw as integers, exact, then (sum + bias code) * s_x * s_w in float64,
    rounded once to float32; (M, N) numpy. Integers of at most 8 bits and their sums below
    2^24 are exact in float32, which is how the sums are computed (a compiled kernel for a few
    rows, torch's float32 matmul for more) over spans of the input short enough for that
    (``_linear_jit.linear_codes``); the spans add in float64. Both give the same floats."""
    from numfmt.nn import _linear_jit as jit

    m, k = codes.shape
    n_out = lay.codes.shape[0]
    xq = codes.astype(np.float32)
    shifted = bool(zero.any())
    if shifted:
        xq -= zero.astype(np.float32)[:, None]
    far = 255 if shifted or codes.dtype != np.int8 else 128  # |qx - zx| at most
    span = 2**24 // (far * 128)
    sw = np.ascontiguousarray(lay.scale64[:, 0])
    bias = np.empty((0, 0)) if bias_codes is None else np.ascontiguousarray(bias_codes, "f8")
    if m <= DIRECT_ROWS:
        out = np.empty((m, n_out), np.float32)
        kernel = jit.linear_codes_serial if m * k * n_out < PARALLEL_WORK else jit.linear_codes
        kernel(xq, span, lay.codes, scale, sw, bias, out)
        return out
    exact32 = torch.get_float32_matmul_precision() == "highest"  # (not TF32 or bfloat16)
    work = torch.float32 if exact32 else torch.float64
    x = torch.from_numpy(xq).to(work)
    w = torch.from_numpy(lay.codes).to(work)
    acc = torch.zeros((m, n_out), dtype=torch.float64)
    for lo in range(0, k, span if exact32 else k):
        acc += (x[:, lo : lo + span] @ w[:, lo : lo + span].T).to(torch.float64)
    if bias.size:
        acc += torch.from_numpy(bias)
    acc *= torch.from_numpy(scale)[:, None] * torch.from_numpy(sw)[None, :]
    return acc.to(torch.float32).numpy()


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


def say_once(reason: str, *, integer: bool = False) -> None:
    """Warn (SlowPathWarning) the first time in a process that a layer takes the slow path
    for this reason (``integer``: a W8A8 layer that multiplies fake-quantized floats rather
    than integer codes)."""
    path = (
        "W8A8 layers multiply fake-quantized inputs by their decoded weight"
        if integer
        else "quantized layers multiply through their decoded float weight"
    )
    slow_path_once(f"{path}: {reason}", stacklevel=3)
