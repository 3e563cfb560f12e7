"""Compiled kernels for the hot paths of integer quantization on the host (numba).

Each function returns None for a case it does not cover (a small block, a rounding mode other
than nearest-even, numba missing), and the caller runs the array-namespace path; the tests
check that both give the same codes. They take numpy arrays and CPU torch tensors of numpy's
dtypes (seen through ``Tensor.numpy()``, which shares the memory: nothing is copied), and
answer in the library they were given. Tensors on other devices, and torch's half types, take
the array-namespace path in torch operations on their own device.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from numfmt.formats import _kernels as _format_kernels
from numfmt.quant import _xp

if TYPE_CHECKING:
    from numfmt.quant.schemes import QuantScheme

#: Blocks smaller than this run on the calling thread where a kernel has a serial twin.
PARALLEL_SIZE = 1 << 16
#: Blocks smaller than this stay in numpy (compiling or loading a kernel costs more).
MIN_SIZE = 1 << 15
#: ... unless the kernel is loaded in this process, or worth loading (False: only MIN_SIZE).
LOADED_TAKES_SMALL = True


_F = TypeVar("_F", bound=Callable[..., Any])
_NOT_SHARED = object()


def _host(a: Any) -> Any:
    """a as numpy sees it: a CPU tensor of a numpy dtype through ``numpy()`` (its own memory,
    no copy); anything else as it is, or ``_NOT_SHARED`` where numpy cannot see it."""
    torch_dtype = type(a).__module__ == "torch" and type(a).__name__ == "dtype"
    if not (torch_dtype or _xp.is_torch(a)):
        return a
    if not torch_dtype and a.device.type != "cpu":
        return _NOT_SHARED
    try:  # torch's half and 8-bit floats have no numpy dtype
        if torch_dtype:
            import torch

            return torch.empty(0, dtype=a).numpy().dtype
        return a.detach().numpy()
    except TypeError:
        return _NOT_SHARED


def _to_torch(result: Any) -> Any:
    import torch

    if isinstance(result, np.ndarray):
        return torch.from_numpy(result)
    if isinstance(result, tuple):
        return tuple(_to_torch(r) for r in result)
    return result


def shared(kernel: _F) -> _F:
    """Let a kernel take CPU torch tensors: it runs on their memory and answers in torch."""

    @functools.wraps(kernel)
    def run(*args: Any, **kwargs: Any) -> Any:
        if not any(_xp.is_torch(a) for a in args):  # numpy: the common case, nothing to do
            return kernel(*args, **kwargs)
        host = [_host(a) for a in args]
        if any(h is _NOT_SHARED for h in host):
            return None
        return _to_torch(kernel(*host, **kwargs))

    return run  # type: ignore[return-value]


def _ready(rows: np.ndarray, kernel: str | None = None) -> bool:
    """Whether a kernel takes these rows: float32 or float64, numba there, and the block large
    enough to pay for loading the kernel, or (for ``kernel``, by name) small blocks coming
    often enough that the kernel pays for itself."""
    return (
        isinstance(rows, np.ndarray)
        and rows.dtype in (np.float32, np.float64)
        and (rows.size >= MIN_SIZE or (kernel is not None and _worth_it(kernel, rows.dtype)))
        and _format_kernels.available()
    )


#: Small blocks of one kind a kernel sees before it loads for them (a model's forward pass
#: fake-quantizes each token's inputs, a few hundred values at a time, thousands of times).
SMALL_CALLS_TO_LOAD = 64
_small_calls: dict[tuple[str, str], int] = {}


def _worth_it(kernel: str, dtype: np.dtype) -> bool:
    """Whether the kernel should take a small block: it is loaded for this dtype already, or
    this is the SMALL_CALLS_TO_LOAD-th small block of its kind (then it loads, once)."""
    if not LOADED_TAKES_SMALL:
        return False
    key = (kernel, np.dtype(dtype).name)
    seen = _small_calls.get(key, 0)
    if seen >= SMALL_CALLS_TO_LOAD:  # decided: no signature to scan on the hot path
        return True
    jit = sys.modules.get("numfmt.quant._jit")  # never import numba just to ask
    if jit is not None:
        sigs = getattr(jit, kernel).signatures
        if any(str(sig[0]).startswith(f"array({key[1]}, 2d") for sig in sigs):
            _small_calls[key] = SMALL_CALLS_TO_LOAD
            return True
    _small_calls[key] = seen + 1
    return seen + 1 >= SMALL_CALLS_TO_LOAD


def _int_scheme(scheme: QuantScheme) -> bool:
    return (
        scheme.kind == "int"
        and scheme.rounding.value == "nearest-even"
        and scheme.scale_rule != "gguf"
        and scheme.mapping.value != "float-min"
    )


#: For each float dtype the kernels take: its unsigned view, the mask that clears the sign
#: bit, and the bits of +inf (larger magnitudes are NaN).
_BIT_PATTERNS = {
    np.float32: (np.uint32, np.uint32(0x7FFF_FFFF), np.uint32(0x7F80_0000)),
    np.float64: (np.uint64, np.uint64(0x7FFF_FFFF_FFFF_FFFF), np.uint64(0x7FF0_0000_0000_0000)),
}


@shared
def row_minmax(rows) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-row minimum and maximum in one pass (NaN for a row that holds one), or None."""
    if not _ready(rows) or rows.shape[1] == 0:
        return None
    from numfmt.quant import _jit

    rows = np.ascontiguousarray(rows)
    unsigned, magnitude, infinity = _BIT_PATTERNS[rows.dtype.type]
    lo, hi = np.empty(rows.shape[0]), np.empty(rows.shape[0])
    _jit.row_minmax(rows, rows.view(unsigned), magnitude, infinity, lo, hi)
    return lo, hi


#: Fewer groups than this get their scales from numpy.
MIN_GROUPS = 1 << 12
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _float32_int_scales(scheme: QuantScheme) -> bool:
    """Whether the scheme's scales are what ``_jit.int_scales`` computes: an int grid,
    symmetric or with an integer zero point, scales from the range stored in float32."""
    return (
        _int_scheme(scheme)
        and scheme.scale_rule == "range"
        and scheme.scale_format == "float32"
        and scheme.mapping.value in ("symmetric", "asymmetric")
    )


def _scale_args(scheme: QuantScheme) -> tuple[float, int, int, bool, float]:
    """(steps, qmin, qmax, asymmetric, top): the scale arguments of the kernels."""
    asymmetric = scheme.mapping.value == "asymmetric"
    steps: float
    if asymmetric:
        steps = scheme.qmax - scheme.qmin
    elif scheme.restricted:
        steps = scheme.grid_max
    else:  # the full range spans 2^b - 1 steps, as torch's observers count
        steps = (scheme.qmax - scheme.qmin) / 2
    return float(steps), scheme.qmin, scheme.qmax, asymmetric, _FLOAT32_MAX


@shared
def int_scales(lo, hi, scheme: QuantScheme):
    """(scales, zero points or None, saturated) of an int grid with float32 scales for the
    ranges [lo, hi] (float64 arrays), in one pass; or None (see ``grid.scales``)."""
    if not (
        isinstance(lo, np.ndarray)
        and lo.size >= MIN_GROUPS
        and lo.dtype == hi.dtype == np.float64
        and _float32_int_scales(scheme)
        and _format_kernels.available()
    ):
        return None
    from numfmt.quant import _jit

    args = _scale_args(scheme)
    lo, hi = np.ascontiguousarray(lo).reshape(-1), np.ascontiguousarray(hi).reshape(-1)
    scale, saturated = np.empty(lo.size), np.empty(lo.size, dtype=np.bool_)
    zero = np.empty(lo.size if args[3] else 0, dtype=np.int64)
    _jit.int_scales(lo, hi, *args, scale, zero, saturated)
    return scale, (zero if args[3] else None), saturated


@shared
def fake_quantize_minmax(rows, scheme: QuantScheme, mask: bool = False):
    """(values, inside or None): fake_quantize of rows (float32 or float64) under an int
    scheme whose scales come from each row's min and max, in rows' dtype, and with ``mask``
    where each value lies within its grid's clip bounds, in one visit of the memory; or None
    when not covered, or when a row holds NaN or inf or saturates its scale (the general path
    then refuses, omits or warns)."""
    if not (
        _ready(rows, "fake_quantize_int_minmax")
        and _float32_int_scales(scheme)
        and scheme.method == "minmax"
    ):
        return None
    from numfmt.quant import _jit

    rows = np.ascontiguousarray(rows)
    unsigned, magnitude, infinity = _BIT_PATTERNS[rows.dtype.type]
    out = np.empty(rows.shape, rows.dtype)
    inside = np.empty(rows.shape if mask else (0, 0), dtype=np.bool_)
    refused = np.zeros(rows.shape[0], dtype=np.bool_)
    kernel = (
        _jit.fake_quantize_int_minmax
        if rows.size >= PARALLEL_SIZE
        else _jit.fake_quantize_int_minmax_serial
    )
    bits = rows.view(unsigned)
    kernel(rows, bits, magnitude, infinity, *_scale_args(scheme), out, inside, refused)
    return None if refused.any() else (out, inside if mask else None)


@shared
def quantize_minmax(rows, scheme: QuantScheme):
    """(codes, scales, zero points, lows, highs) of rows (float32 or float64) under an int
    scheme whose scales come from each row's min and max: what ``choose_qparams`` then
    ``quantize`` give, in one compiled visit of the memory (codes in ``code_dtype``, float64
    scales, int64 zero points (0 where symmetric), each row's min and max in float64); or
    None where not covered or a row holds NaN or inf or saturates (see
    ``fake_quantize_minmax``). Small blocks welcome: an integer matmul quantizes each token's
    inputs this way."""
    how = _minmax_codes(scheme)
    native = isinstance(rows, np.ndarray) and rows.dtype in (np.float32, np.float64)
    if how is None or not native:  # (a big-endian float32 is not np.float32)
        return None
    from numfmt.quant import _jit

    dtype, args = how
    rows = np.ascontiguousarray(rows)
    unsigned, magnitude, infinity = _BIT_PATTERNS[rows.dtype.type]
    n = rows.shape[0]
    codes = np.empty(rows.shape, dtype)
    scale, zero, lo_hi = np.empty(n), np.zeros(n, np.int64), np.empty((n, 2))
    refused = np.zeros(n, dtype=np.bool_)
    parallel = rows.size >= PARALLEL_SIZE
    kernel: Any = _jit.quantize_int_minmax if parallel else _jit.quantize_int_minmax_serial
    bits = rows.view(unsigned)
    kernel(rows, bits, magnitude, infinity, *args, codes, scale, zero, lo_hi, refused)
    if refused.any():
        return None
    return codes, scale, zero, np.ascontiguousarray(lo_hi[:, 0]), np.ascontiguousarray(lo_hi[:, 1])


@functools.lru_cache(maxsize=64)
def _minmax_codes(scheme: QuantScheme) -> tuple[Any, tuple] | None:
    """(the codes' dtype, the scale arguments) of a scheme ``quantize_minmax`` takes, else
    None (asked once per scheme: it runs for every token's inputs)."""
    if not (
        _format_kernels.available() and _float32_int_scales(scheme) and scheme.method == "minmax"
    ):
        return None
    return _xp.int_dtype(np, scheme.bits, scheme.code_signed), _scale_args(scheme)


def _zeros(rows, zero_point):
    if zero_point is None:
        return np.zeros(rows.shape[0], np.int64)
    return np.ascontiguousarray(zero_point, dtype=np.int64)


@shared
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


@shared
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


@shared
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


@shared
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


@shared
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


@shared
def error_sums(rows, codes, scheme: QuantScheme, scale, zero, minimum, lo, hi, omit: bool):
    """(sums, bad) for ``report``: each row's counts, sums of squares and products, clipped
    counts and largest error (``_jit.SUMS``, one column each) of rows against the values its
    codes stand for, decoded on the fly in float64 (one pass, no dequantized copy); bad[i]
    counts row i's elements that are not finite. A row with a code off the grid has NaN sums.
    None where not covered."""
    if not _ready(rows, "error_sums_int") or scheme.kind not in ("int", "float", "codebook"):
        return None
    if not isinstance(codes, np.ndarray) or codes.dtype.kind not in "iu":
        return None
    from numfmt.quant import _jit

    n = rows.shape[0]

    def per_row(a, default=0.0, dtype=np.float64):
        if a is None:
            return np.full(n, default, dtype=dtype)
        return np.ascontiguousarray(np.broadcast_to(np.asarray(a, dtype=dtype).reshape(-1), (n,)))

    out = np.empty((n, len(_jit.SUMS)))
    bad = np.zeros(n, dtype=np.int64)
    rows, codes = np.ascontiguousarray(rows), np.ascontiguousarray(codes)
    s, lo, hi = per_row(scale), per_row(lo), per_row(hi)
    if scheme.kind == "int":
        z, m = per_row(zero, 0, np.int64), per_row(minimum)
        _jit.error_sums_int(rows, codes, s, z, m, lo, hi, omit, out, bad)
    else:
        _jit.error_sums_table(rows, codes, _values_of_codes(scheme), s, lo, hi, omit, out, bad)
    return out, bad


@functools.lru_cache(maxsize=64)
def _values_of_codes(scheme: QuantScheme) -> np.ndarray:
    """Each code's unscaled value (float64), NaN for a code quantize never gives."""
    if scheme.kind == "codebook":
        return np.asarray(scheme.codebook, dtype=np.float64)
    from numfmt.formats.decode import decode_table

    table = np.array(decode_table(scheme.element_format), dtype=np.float64)
    return np.where(np.isfinite(table), table, np.nan)
