"""The device twins of ``_kernels``: fused Triton kernels for torch tensors on CUDA.

Each function takes rows (a 2-D tensor of float64, float32 or a half type, whose rows are the
groups), or ranges, and returns None where it does not apply (no Triton, another dtype, a
scheme it does not cover, or a row that holds NaN or an infinity or saturates its scale: the
general path then refuses, omits or warns); the tests check that both paths give the same
codes, values, scales and chosen ranges. The kernels: the range, scale and codes or values of
each row in one pass (``quantize_minmax``, ``fake_quantize_minmax``); scales from ranges
(``int_scales``, ``grid.scales``'s); the MSE search's errors (``mse_errors``) and the whole
search, candidates computed where they are used and the ratio picked on the device
(``mse_search``). The caller decides the device: these run wherever Triton runs a tensor
(CUDA, or the host under ``TRITON_INTERPRET=1``, which the tests use without a GPU).
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from numfmt.errors import slow_path_once
from numfmt.quant import _kernels

if TYPE_CHECKING:
    from numfmt.quant.schemes import QuantScheme

#: Rows up to this long are read once, whole, by one program; longer rows take their range
#: from torch's reductions first (a per-tensor scale, say).
MAX_ROW = 8192
#: Elements a program holds of a row longer than MAX_ROW (a tile of its columns).
TILE = 4096
#: Elements a program holds of short rows (groups): a tile of rows by whole rows. ptxas
#: (sm_90) gives the kernel at most about 200 registers a thread there and no spills; tiles
#: of 4096 spilled (asymmetric grids, the straight-through mask).
ROWS_TILE = 2048
#: Codes spanning fewer levels than this take the float32 kernels' division-free quotient.
F32_SPAN = 1 << 20


def say_once(reason: str) -> None:
    """Warn (SlowPathWarning) the first time in a process that a CUDA tensor takes numfmt's
    engine in torch operations (the same results, slower) for this reason."""
    message = f"quantization on CUDA runs in torch operations (same results, slower): {reason}"
    slow_path_once(message, stacklevel=4)


@functools.cache
def _triton() -> Any:
    """The kernels module, or None where Triton is not installed, or does not import (said
    once)."""
    if importlib.util.find_spec("triton") is None:
        return None
    try:
        from numfmt.quant import _triton as kernels
    except Exception as exc:  # a broken install: the exact path runs
        say_once(f"Triton does not import ({type(exc).__name__}: {exc})")
        return None
    return kernels


def pow2(n: int) -> int:
    """The least power of two at or above n (at least 1): ``triton.next_power_of_2`` in plain
    Python (Triton's is a compile-time function, some microseconds a call on the host)."""
    return 1 << max(0, n - 1).bit_length()


def cdiv(a: int, b: int) -> int:
    """a / b rounded up (``triton.cdiv``, in plain Python)."""
    return -(-a // b)


def _runs(t: Any) -> bool:
    """Whether Triton runs kernels on t here (said once where it is not installed)."""
    if t.device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        return False  # (the interpreter runs host tensors: the tests' way without a GPU)
    if _triton() is None:
        if importlib.util.find_spec("triton") is None:
            say_once("Triton is not installed (it comes with torch's CUDA builds)")
        return False
    return True


def _ready(rows: Any) -> bool:
    if not _runs(rows):
        return False
    if rows.ndim != 2 or rows.numel() == 0:
        return False
    name = str(rows.dtype).removeprefix("torch.")
    if name not in ("float32", "float64", "bfloat16", "float16"):
        say_once(f"the fused kernels take float64, float32, bfloat16 and float16, not {name}")
        return False
    return True


def _minmax_scheme(scheme: QuantScheme) -> bool:
    return _kernels._float32_int_scales(scheme) and scheme.method == "minmax"


def _layout(rows) -> tuple[int, int, int, int, bool]:
    """(BLOCK_R, BLOCK_C, programs along rows, along columns, ranges given) for rows."""
    n_rows, width = rows.shape
    if width <= MAX_ROW:
        block_c = pow2(width)
        block_r = max(1, ROWS_TILE // block_c)
        return block_r, block_c, cdiv(n_rows, block_r), 1, False
    return 1, TILE, n_rows, cdiv(width, TILE), True


def _minmax(rows, scheme: QuantScheme, *, codes: bool, mask: bool, omit: bool = False):
    import torch

    kernels = _triton()
    rows = rows.contiguous()
    n_rows, width = rows.shape
    dev = rows.device
    block_r, block_c, grid_r, grid_c, range_in = _layout(rows)
    if range_in:
        seen = torch.where(torch.isfinite(rows), rows, 0.0) if omit else rows
        lo_in, hi_in = torch.amin(seen, dim=1), torch.amax(seen, dim=1)
    else:
        lo_in = hi_in = rows  # not read
    if codes:
        from numfmt.quant import _xp

        out = torch.empty(rows.shape, dtype=_xp.int_dtype(torch, scheme.bits, scheme.code_signed),
                          device=dev)  # fmt: skip
    else:
        out = torch.empty_like(rows)
    inside = torch.empty(rows.shape, dtype=torch.int8, device=dev) if mask else out
    per_row = torch.empty((4, n_rows), dtype=torch.float64, device=dev)  # one allocation
    scale, zero, lo, hi = per_row[0], per_row[1].view(torch.int64), per_row[2], per_row[3]
    refused = torch.empty(n_rows, dtype=torch.int8, device=dev)
    steps, qmin, qmax, asymmetric, top = _kernels._scale_args(scheme)
    # float32 rows skip the float64 division where the codes span less than 2^20 (the
    # exact-remainder argument of the kernel needs n * s within float64's 53 bits)
    f32 = rows.dtype != torch.float64 and qmax - qmin < F32_SPAN  # (half types: float32's)
    launched = _launch(
        kernels.minmax_kernel, grid_r * grid_c,
        rows, lo_in, hi_in, out, inside, scale, zero, lo, hi, refused, n_rows, width, grid_c,
        STEPS=steps, QMIN=qmin, QMAX=qmax, ASYM=asymmetric, TOP=top, CODES=codes, MASK=mask,
        RANGE_IN=range_in, F32=f32, OMIT=omit, BLOCK_R=block_r, BLOCK_C=block_c,
        num_warps=8 if block_r * block_c >= ROWS_TILE else 4, enable_fp_fusion=False,
    )  # fmt: skip
    if not launched:
        return None
    # the one wait for the device: NaN and inf must be refused, and saturated scales warned
    # of; none of these can happen to float32 rows with omit where a step of the grid spans
    # at least float32's largest value over the range (the span is at most twice it)
    cannot_refuse = omit and rows.dtype != torch.float64 and steps >= (2 if asymmetric else 1)
    if not cannot_refuse and bool(refused.any()):
        return None
    return out, (inside.view(torch.bool) if mask else None), scale, zero, lo, hi


def fake_quantize_minmax(rows, scheme: QuantScheme, mask: bool = False):
    """(values in rows' dtype, the unclipped mask or None) of rows under an int scheme whose
    scales come from each row's min and max, in one kernel; or None (see the module)."""
    if not (_minmax_scheme(scheme) and _ready(rows)):
        return None
    done = _minmax(rows, scheme, codes=False, mask=mask)
    return None if done is None else done[:2]


def quantize_minmax(rows, scheme: QuantScheme, omit: bool = False):
    """(codes, scales, zero points, lows, highs) as ``_kernels.quantize_minmax`` gives them
    on the host (float64 scales, int64 zero points, 0 where symmetric), or None. ``omit``:
    as ``choose_qparams(..., nan_policy="omit")`` then ``quantize`` (NaN and infinities out
    of the range, NaN to the zero point's code, infinities clipped; lows and highs those of
    the finite values), without waiting for the device where nothing can be refused."""
    if not (_minmax_scheme(scheme) and _ready(rows)):
        return None
    done = _minmax(rows, scheme, codes=True, mask=False, omit=omit)
    return None if done is None else (done[0], *done[2:])


#: Element-candidates an MSE program holds at a time (KB candidates by BLOCK_C columns): with
#: 8 warps, 8 running sums a thread. ptxas (sm_90) gives the kernels at most 128 registers a
#: thread and no spills there (two programs an SM); a tile of 4096 took 255 and spilled.
MSE_TILE = 2048


def _mse_layout(rows, count: int) -> tuple[int, int, int, int]:
    """(CHUNK, BLOCK_C, KB, chunks) of the MSE kernels: a program takes one row's chunk of
    columns, KB candidates by BLOCK_C columns at a time."""
    width = rows.shape[1]
    chunk = pow2(width) if width <= MAX_ROW else TILE
    block_c = min(chunk, 256)
    kb = max(1, min(pow2(count), MSE_TILE // block_c))
    return chunk, block_c, kb, cdiv(width, chunk)


def mse_errors(rows, scales, zero_points, scheme: QuantScheme):
    """Squared error of each row under each candidate scale (rows, candidates), as
    ``_kernels.mse_errors``; or None (rows that hold NaN or an infinity take the general
    path)."""
    import torch

    if not (_kernels._int_scheme(scheme) and _ready(rows)):
        return None
    if not bool(torch.isfinite(rows).all()):
        return None
    rows = rows.contiguous()
    n_rows, width = rows.shape
    count = scales.shape[1]
    chunk, block_c, kb, chunks = _mse_layout(rows, count)
    scales = scales.to(torch.float64).contiguous()
    zeros = (
        torch.zeros(scales.shape, dtype=torch.int64, device=rows.device)
        if zero_points is None
        else zero_points.to(torch.int64).contiguous()
    )
    partial = torch.empty((chunks, n_rows, count), dtype=torch.float64, device=rows.device)
    launched = _launch(
        _triton().mse_kernel, n_rows * chunks,
        rows, scales, zeros, partial, n_rows, width, chunks, K=count,
        QMIN=scheme.qmin, QMAX=scheme.qmax, CHUNK=chunk, KB=kb, BLOCK_C=block_c, num_warps=8,
    )  # fmt: skip
    if not launched:
        return None
    return partial[0] if chunks == 1 else partial.sum(dim=0)


def mse_search(rows, lo, hi, scheme: QuantScheme, ratios: int):
    """(lo, hi) that ``calibration.search`` chooses by the mean square error for rows whose
    ranges are [lo, hi], ratios clip ratios each, in two kernels and no wait for the device
    (the candidates' scales are computed where they are used); or None where the scheme's
    scales are not float32 ones from the range."""
    import torch

    if not (_kernels._float32_int_scales(scheme) and _ready(rows)) or ratios < 1:
        return None
    rows = rows.contiguous()
    n_rows, width = rows.shape
    chunk, block_c, kb, chunks = _mse_layout(rows, ratios)
    lo = lo.to(torch.float64).contiguous()
    hi = hi.to(torch.float64).contiguous()
    steps, qmin, qmax, asymmetric, top = _kernels._scale_args(scheme)
    partial = torch.empty((chunks, n_rows, ratios), dtype=torch.float64, device=rows.device)
    chosen = torch.empty((2, n_rows), dtype=torch.float64, device=rows.device)
    block_k = min(pow2(ratios), 256)
    block_r = max(1, min(64, TILE // block_k))
    launched = _launch(
        _triton().search_kernel, n_rows * chunks,
        rows, lo, hi, partial, n_rows, width, chunks, K=ratios, STEPS=steps, QMIN=qmin,
        QMAX=qmax, ASYM=asymmetric, TOP=top, CHUNK=chunk, KB=kb, BLOCK_C=block_c, num_warps=8,
    ) and _launch(
        _triton().pick_kernel, cdiv(n_rows, block_r),
        partial, lo, hi, chosen[0], chosen[1], n_rows, CHUNKS=chunks, K=ratios, BLOCK_R=block_r,
        BLOCK_K=block_k, enable_fp_fusion=False,  # (the tie's bound rounded twice, as numpy)
    )  # fmt: skip
    return (chosen[0], chosen[1]) if launched else None


def int_scales(lo, hi, scheme: QuantScheme):
    """(scales, zero points or None, saturated) of the ranges [lo, hi] (1-D), as
    ``_kernels.int_scales`` gives them on the host, in one kernel; or None."""
    import torch

    if not (_kernels._float32_int_scales(scheme) and _runs(lo)):
        return None
    lo = lo.to(torch.float64).reshape(-1).contiguous()
    hi = hi.to(torch.float64).reshape(-1).contiguous()
    n = lo.numel()
    if n == 0:
        return None
    steps, qmin, qmax, asymmetric, top = _kernels._scale_args(scheme)
    scale = torch.empty(n, dtype=torch.float64, device=lo.device)
    zero = torch.empty(n if asymmetric else 0, dtype=torch.int64, device=lo.device)
    saturated = torch.empty(n, dtype=torch.int8, device=lo.device)
    block = 1024
    launched = _launch(
        _triton().scales_kernel, -(-n // block),
        lo, hi, scale, zero, saturated, n, STEPS=steps, QMIN=qmin, QMAX=qmax, ASYM=asymmetric,
        TOP=top, BLOCK=block,
    )  # fmt: skip
    if not launched:
        return None
    return scale, (zero if asymmetric else None), saturated.view(torch.bool)


def _launch(kernel, programs: int, *args, **kwargs) -> bool:
    """Run a kernel on one axis of programs; False (said once) where Triton cannot build or
    launch it on this machine (another Triton, another GPU): the caller's exact path runs."""
    return launch(kernel, programs, args, kwargs, say_once)


#: Kernels (and their compile-time arguments) that failed to build or launch in this process.
_failed: set[tuple[int, tuple]] = set()


def launch(kernel, programs: int, args: tuple, kwargs: dict, say: Callable[[str], None]) -> bool:
    """Run a Triton kernel on one axis of programs, on the device of its tensors (Triton
    launches on the current CUDA device otherwise); False where Triton cannot build or launch
    it here, said through ``say`` the first time (a kernel that failed is not tried again
    with the same compile-time arguments: each try costs a compile)."""
    import contextlib

    import torch

    def key() -> tuple[int, tuple]:
        return id(kernel), tuple(sorted(kwargs.items()))

    if _failed and key() in _failed:
        return False
    device = next((a.device for a in args if isinstance(a, torch.Tensor)), None)
    on = (
        torch.cuda.device(device)
        if device is not None and device.type == "cuda"
        else contextlib.nullcontext()
    )
    try:
        with on:
            kernel[(programs,)](*args, **kwargs)
    except Exception as exc:  # a compiler's or a driver's error, whatever its class
        _failed.add(key())
        say(f"the fused kernel could not run here ({type(exc).__name__}: {exc})")
        return False
    return True
