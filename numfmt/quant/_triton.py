"""Triton kernels for integer quantization on CUDA; imported only by ``_gpu``.

The arithmetic is the host kernels' (``_jit``), in float64 on the device, so the codes and
values are the same bit for bit: each group's scale is its range over the steps, rounded up to
float32 (a cast to nearest, then one step up where the cast went down); codes are
``clip(rint(x / scale) + zero, qmin, qmax)`` with the quotient correctly rounded (Triton's
float64 division is IEEE's; only its float32 division is approximate; float32 rows reach the
same code without dividing, ``F32``; so do bfloat16 and float16 rows, whose values are float32
numbers); values are ``(code - zero) * scale`` rounded once into the output's dtype (a half
type through float32, as torch's cast from float64 rounds on the host's path).

A tile is ``BLOCK_R`` rows (groups) by ``BLOCK_C`` columns. Where a whole row fits in a tile
the kernel finds its range itself (one visit of the memory); longer rows take their range
from the caller (``RANGE_IN``) and span ``TILES_C`` tiles. Programs run on the launch's first
axis only (CUDA's second and third hold 65535). The MSE search (``search_kernel``, then
``pick_kernel``) takes a row's chunk per program and a block of candidates at a time, each
candidate's scale computed from the row's range as the host computes it (``_scale_of``).
"""

import triton
import triton.language as tl

#: 1.5 * 2^52: adding it to a float64 of magnitude below 2^51 rounds it to an integer (to
#: nearest, ties to even), and subtracting it again leaves that integer exactly: rint without
#: libdevice (which Triton's interpreter lacks), for values the callers clamp first.
ROUNDER = tl.constexpr(6755399441055744.0)


@triton.jit
def _rint(v):
    """v rounded to an integer, ties to even (|v| < 2^51)."""
    return (v + ROUNDER) - ROUNDER


@triton.jit
def _to_bfloat16(v):
    """float32 v (finite) rounded to bfloat16, to nearest, ties to even, on its bits (Triton's
    interpreter truncates in its own cast)."""
    bits = v.to(tl.uint32, bitcast=True)
    bits = bits + 0x7FFF + ((bits >> 16) & 1)
    return (bits >> 16).to(tl.uint16).to(tl.bfloat16, bitcast=True)


@triton.jit
def _scale_of(lo, hi, STEPS: tl.constexpr, QMIN: tl.constexpr, QMAX: tl.constexpr,
              ASYM: tl.constexpr, TOP: tl.constexpr):  # fmt: skip
    """(scale, zero point, saturated) of the ranges [lo, hi], float64 (1-D each), as
    ``_jit._int_scale``: a NaN bound gives a NaN scale, not saturated, zero point QMIN."""
    low = tl.where(lo < 0.0, lo, 0.0)
    high = tl.where(hi > 0.0, hi, 0.0)
    if ASYM:  # noqa: SIM108 (a branch on a constexpr, compiled away)
        span = high - low
    else:
        span = tl.where(-low > high, -low, high)
    v = span / STEPS
    cast = v.to(tl.float32)
    up = (cast.to(tl.float64) < v).to(tl.uint32)
    s = (cast.to(tl.uint32, bitcast=True) + up).to(tl.float32, bitcast=True).to(tl.float64)
    saturated = s > TOP
    s = tl.where(saturated, TOP, s)
    nan = (lo != lo) | (hi != hi)
    s = tl.where(nan, float("nan"), s)  # a NaN range has no scale
    saturated = saturated & ~nan
    if ASYM:
        positive = s > 0.0
        safe = tl.where(positive, s, 1.0)
        quotient = tl.minimum(tl.maximum(QMIN - low / safe, QMIN - 1.0), QMAX + 1.0)
        z = tl.where(positive, _rint(quotient), QMIN)
        z = tl.minimum(tl.maximum(z, QMIN), QMAX)
    else:
        z = tl.zeros(s.shape, tl.float64)
    return s, z, saturated


@triton.jit
def minmax_kernel(
    x_ptr, lo_in_ptr, hi_in_ptr,  # rows (R, C) contiguous; ranges when RANGE_IN
    out_ptr, inside_ptr,  # values or codes (R, C); the unclipped mask when MASK
    scale_ptr, zero_ptr, lo_ptr, hi_ptr, refused_ptr,  # per row
    R, C, TILES_C,  # tiles along a row (programs: row tiles x TILES_C)
    STEPS: tl.constexpr, QMIN: tl.constexpr, QMAX: tl.constexpr, ASYM: tl.constexpr,
    TOP: tl.constexpr, CODES: tl.constexpr, MASK: tl.constexpr, RANGE_IN: tl.constexpr,
    F32: tl.constexpr, OMIT: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr,
):  # fmt: skip
    """Each row's scale from its min and max, then its codes (CODES) or fake-quantized values.

    Rows that hold NaN or an infinity, or whose scale saturates, are flagged in ``refused``
    (the caller then takes the general path, which refuses, omits or warns). With OMIT, the
    general path's ``nan_policy="omit"`` instead: the range leaves NaN and infinities out,
    NaN takes the zero point's code and infinities clip; only saturation is flagged (the
    caller gives ranges from finite values where RANGE_IN)."""
    pid = tl.program_id(0).to(tl.int64)  # one axis: CUDA's second holds 65535 programs
    pid_r = pid // TILES_C
    pid_c = pid % TILES_C
    r = pid_r.to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R).to(tl.int64)
    c = pid_c.to(tl.int64) * BLOCK_C + tl.arange(0, BLOCK_C).to(tl.int64)
    row_ok = r < R
    ok = row_ok[:, None] & (c < C)[None, :]
    offsets = r[:, None] * C + c[None, :]
    x = tl.load(x_ptr + offsets, mask=ok, other=0.0).to(tl.float64)
    nan = x != x
    x = tl.where(nan, 0.0, x)  # (the row is refused; no NaN goes further)
    if RANGE_IN:
        lo = tl.load(lo_in_ptr + r, mask=row_ok, other=0.0).to(tl.float64)
        hi = tl.load(hi_in_ptr + r, mask=row_ok, other=0.0).to(tl.float64)
        bad = (lo != lo) | (hi != hi)
    else:
        seen = tl.where(x - x == 0.0, x, 0.0) if OMIT else x  # (x - x: NaN for infinities)
        lo = tl.min(tl.where(ok, seen, float("inf")), axis=1)
        hi = tl.max(tl.where(ok, seen, float("-inf")), axis=1)
        bad = tl.max((nan & ok).to(tl.int32), axis=1) > 0
    bad = bad | (lo == float("-inf")) | (hi == float("inf"))
    if OMIT:
        bad = bad & False
    s, z, saturated = _scale_of(lo, hi, STEPS, QMIN, QMAX, ASYM, TOP)
    if pid_c == 0:
        tl.store(scale_ptr + r, s, mask=row_ok)
        tl.store(zero_ptr + r, z.to(tl.int64), mask=row_ok)
        tl.store(lo_ptr + r, lo, mask=row_ok)
        tl.store(hi_ptr + r, hi, mask=row_ok)
        tl.store(refused_ptr + r, (bad | saturated).to(tl.int8), mask=row_ok)
    s2 = s[:, None]
    z2 = z[:, None]
    positive = s2 > 0.0
    divisor = tl.where(positive, s2, 1.0)
    # the quotient clamped to a step beyond the grid first (rint needs it, the clip then
    # gives the same code); NaN only in rows that are refused
    if F32:
        # float32 values over float32 scales, codes spanning less than 2^20 (the caller
        # checks): no float64 division. The product by the reciprocal is within 2^-32 of the
        # quotient (clamped to a few steps beyond the grid, below 2^21), so its rint is the
        # nearest integer n or one off; the remainder x - n*s is exact in float64 (at most
        # 45 significant bits), and comparing twice it with s settles n, a tie going to the
        # even neighbour. The float64 quotient of two float32 numbers never lands on a tie
        # that is not one, so this is rint of the correctly rounded quotient too.
        inverse = 1.0 / divisor
        n = _rint(tl.minimum(tl.maximum(x * inverse, QMIN - 2.0 - z2), QMAX + 2.0 - z2))
        twice = 2.0 * (x - n * divisor)
        odd = (n.to(tl.int32) & 1) != 0
        up = (twice > divisor) | ((twice == divisor) & odd)
        down = (twice < -divisor) | ((twice == -divisor) & odd)
        q = n + up.to(tl.float64) - down.to(tl.float64)
    else:
        quotient = x / divisor
        q = _rint(tl.minimum(tl.maximum(quotient, QMIN - 1.0 - z2), QMAX + 1.0 - z2))
    q = tl.where(positive, q, 0.0)
    code = tl.minimum(tl.maximum(q + z2, QMIN), QMAX)
    if CODES:
        tl.store(out_ptr + offsets, code.to(out_ptr.dtype.element_ty), mask=ok)
    else:
        value = (code - z2) * s2
        if out_ptr.dtype.element_ty == tl.bfloat16:
            value = _to_bfloat16(value.to(tl.float32))
        elif out_ptr.dtype.element_ty == tl.float16:
            # float32 first: torch's cast from float64, which the host's path uses, goes
            # through float32 (two roundings; Triton's own may round once)
            value = value.to(tl.float32)
        tl.store(out_ptr + offsets, value.to(out_ptr.dtype.element_ty), mask=ok)
    if MASK:
        below = (QMIN - 0.5 - z2) * s2
        above = (QMAX + 0.5 - z2) * s2
        inside = (x >= below) & (x <= above)
        tl.store(inside_ptr + offsets, inside.to(tl.int8), mask=ok)


@triton.jit
def _errors_of(x_ptr, row, C, start, s, z, QMIN: tl.constexpr, QMAX: tl.constexpr,
               CHUNK: tl.constexpr, KB: tl.constexpr, BLOCK_C: tl.constexpr):  # fmt: skip
    """[KB]: the squared error of row ``row``'s columns start .. start + CHUNK under the KB
    candidates (s, z) (float64 [KB] each), as ``_jit.mse_errors_int`` (multiplied by
    1 / scale; the sum in any order). A running sum per element and candidate, reduced once.
    Padding reads 0, whose error is 0. The compiler may fuse the product by the reciprocal
    into rint's addition (rounding the exact product): that moves a code only at an exact
    tie, where both neighbours have the same squared error."""
    inverse = tl.where(s > 0.0, 1.0 / tl.where(s > 0.0, s, 1.0), 0.0)[:, None]
    lo = (QMIN - z)[:, None]
    hi = (QMAX - z)[:, None]
    s2 = s[:, None]
    total = tl.zeros((KB, BLOCK_C), tl.float64)
    for c0 in range(0, CHUNK, BLOCK_C):
        c = start + c0 + tl.arange(0, BLOCK_C)
        x = tl.load(x_ptr + row * C + c, mask=c < C, other=0.0).to(tl.float64)[None, :]
        q = _rint(x * inverse)
        # (clamped by comparisons: the rows are finite, and tl.minimum's NaN care costs
        # three times the instructions, in the loop that bounds the search)
        q = tl.where(q < lo, lo, q)
        q = tl.where(q > hi, hi, q)
        d = q * s2 - x
        total += d * d
    return tl.sum(total, axis=1)


@triton.jit
def mse_kernel(
    x_ptr, scales_ptr, zeros_ptr, errors_ptr,  # rows (R, C); candidates (R, K); (chunks, R, K)
    R, C, CHUNKS, K: tl.constexpr,
    QMIN: tl.constexpr, QMAX: tl.constexpr,
    CHUNK: tl.constexpr, KB: tl.constexpr, BLOCK_C: tl.constexpr,
):  # fmt: skip
    """errors[chunk, i, k]: the squared error of one chunk of row i's columns (CHUNK of them)
    under candidate k (``_errors_of``), the candidates given. Each program takes one row's
    chunk and KB candidates at a time. The rows are finite (the caller checks)."""
    pid = tl.program_id(0).to(tl.int64)  # one axis: CUDA's second holds 65535 programs
    row = pid // CHUNKS
    chunk = pid % CHUNKS
    out = errors_ptr + chunk * R * K + row * K
    for k0 in range(0, K, KB):
        ks = k0 + tl.arange(0, KB)
        k_ok = ks < K
        s = tl.load(scales_ptr + row * K + ks, mask=k_ok, other=0.0)
        z = tl.load(zeros_ptr + row * K + ks, mask=k_ok, other=0).to(tl.float64)
        errors = _errors_of(x_ptr, row, C, chunk * CHUNK, s, z, QMIN, QMAX, CHUNK, KB, BLOCK_C)
        tl.store(out + ks, errors, mask=k_ok)


@triton.jit
def _ratio(k, K: tl.constexpr):
    """The k-th clip ratio of the search, (K - k) / K in float64, as numpy divides."""
    return (K - k).to(tl.float64) / K


@triton.jit
def search_kernel(
    x_ptr, lo_ptr, hi_ptr, errors_ptr,  # rows (R, C); their ranges (R,); out (chunks, R, K)
    R, C, CHUNKS, K: tl.constexpr,
    STEPS: tl.constexpr, QMIN: tl.constexpr, QMAX: tl.constexpr, ASYM: tl.constexpr,
    TOP: tl.constexpr, CHUNK: tl.constexpr, KB: tl.constexpr, BLOCK_C: tl.constexpr,
):  # fmt: skip
    """``mse_kernel`` with the candidates computed here rather than read: candidate k of row i
    is the range [lo_i, hi_i] times ``_ratio(k)``, its scale and zero point as
    ``grid.candidate_scales`` gives them (float32 scales rounded up, ``_scale_of``). Rows
    whose range is not finite get errors the caller ignores."""
    pid = tl.program_id(0).to(tl.int64)
    row = pid // CHUNKS
    chunk = pid % CHUNKS
    out = errors_ptr + chunk * R * K + row * K
    lo0 = tl.load(lo_ptr + row)
    hi0 = tl.load(hi_ptr + row)
    for k0 in range(0, K, KB):
        ks = k0 + tl.arange(0, KB)
        r = _ratio(ks, K)
        s, z, _ = _scale_of(lo0 * r, hi0 * r, STEPS, QMIN, QMAX, ASYM, TOP)
        errors = _errors_of(x_ptr, row, C, chunk * CHUNK, s, z, QMIN, QMAX, CHUNK, KB, BLOCK_C)
        tl.store(out + ks, errors, mask=ks < K)


@triton.jit
def _summed(errors_ptr, r, ks, ok, R, CHUNKS: tl.constexpr, K: tl.constexpr, BLOCK_R: tl.constexpr,
            BLOCK_K: tl.constexpr):  # fmt: skip
    """errors[:, r, ks] summed over the chunks ([BLOCK_R, BLOCK_K])."""
    e = tl.zeros((BLOCK_R, BLOCK_K), tl.float64)
    for chunk in range(0, CHUNKS):
        skip = (tl.zeros((), tl.int64) + chunk) * R * K  # (in int64: chunks x rows x K)
        e += tl.load(errors_ptr + skip + r[:, None] * K + ks[None, :], mask=ok, other=0.0)
    return e


@triton.jit
def pick_kernel(
    errors_ptr, lo_ptr, hi_ptr, lo_out, hi_out,  # (chunks, R, K); ranges (R,) in and out
    R, CHUNKS: tl.constexpr, K: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_K: tl.constexpr,
):  # fmt: skip
    """Per row, the first ratio whose error (summed over chunks) is within a relative 1e-9
    of the least (``calibration.first_least``), and the range it keeps: [lo, hi] times it.
    A row whose range is not finite keeps it (ratio 1), as the general path's search does."""
    r = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R).to(tl.int64)
    row_ok = r < R
    tie = tl.full((), 1.0, tl.float64) / 1000000000.0  # 1e-9, correctly rounded in float64
    least = tl.full((BLOCK_R,), float("inf"), tl.float64)
    for k0 in range(0, K, BLOCK_K):
        ks = k0 + tl.arange(0, BLOCK_K)
        ok = row_ok[:, None] & (ks < K)[None, :]
        e = _summed(errors_ptr, r, ks, ok, R, CHUNKS, K, BLOCK_R, BLOCK_K)
        least = tl.minimum(least, tl.min(tl.where(ok, e, float("inf")), axis=1))
    bound = (least + tl.abs(least) * tie)[:, None]
    best = tl.full((BLOCK_R,), K, tl.int32)
    for k0 in range(0, K, BLOCK_K):
        ks = k0 + tl.arange(0, BLOCK_K)
        ok = row_ok[:, None] & (ks < K)[None, :]
        e = _summed(errors_ptr, r, ks, ok, R, CHUNKS, K, BLOCK_R, BLOCK_K)
        best = tl.minimum(best, tl.min(tl.where(ok & (e <= bound), ks[None, :], K), axis=1))
    lo0 = tl.load(lo_ptr + r, mask=row_ok, other=0.0)
    hi0 = tl.load(hi_ptr + r, mask=row_ok, other=0.0)
    finite = (lo0 - lo0 == 0.0) & (hi0 - hi0 == 0.0)  # NaN and infinities are not
    best = tl.where(finite & (best < K), best, 0)
    ratio = _ratio(best, K)
    tl.store(lo_out + r, lo0 * ratio, mask=row_ok)
    tl.store(hi_out + r, hi0 * ratio, mask=row_ok)


@triton.jit
def scales_kernel(
    lo_ptr, hi_ptr, scale_ptr, zero_ptr, saturated_ptr, N,
    STEPS: tl.constexpr, QMIN: tl.constexpr, QMAX: tl.constexpr, ASYM: tl.constexpr,
    TOP: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    """scale, zero point and saturation of each range [lo, hi] (float64), ``_scale_of``:
    ``grid.scales`` for int grids with float32 scales, as ``_jit.int_scales`` on the host."""
    i = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK).to(tl.int64)
    ok = i < N
    lo = tl.load(lo_ptr + i, mask=ok, other=0.0)
    hi = tl.load(hi_ptr + i, mask=ok, other=0.0)
    s, z, saturated = _scale_of(lo, hi, STEPS, QMIN, QMAX, ASYM, TOP)
    tl.store(scale_ptr + i, s, mask=ok)
    tl.store(saturated_ptr + i, saturated.to(tl.int8), mask=ok)
    if ASYM:
        tl.store(zero_ptr + i, z.to(tl.int64), mask=ok)
