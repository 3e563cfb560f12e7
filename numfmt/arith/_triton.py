"""The elementwise kernel's fast path as one fused Triton kernel, for CUDA tensors.

The arithmetic of ``_jit``'s vectorised pass (and of ``_torch``, which runs it as one torch
operation after another): each operand read in its own dtype and widened to float64 exactly,
the exact result as a float64 and the sign of its remainder (TwoSum; TwoProd, division and
square root by a fused multiply-add, exact on a GPU), rounded to odd, then rounded into the
format on the float64's own bits, and stored in the result's dtype. One pass over memory, as
the cast it is compared with makes.

Triton contracts a multiplication and an addition into one fused operation unless told not
to; TwoSum and the remainders need every operation rounded as written, so every launch passes
``enable_fp_fusion=False``. Division and square root in float64 are correctly rounded on
NVIDIA GPUs (``div.rn.f64``, ``sqrt.rn.f64``: the approximate forms exist for float32 only).

Imported only where triton is installed and a CUDA tensor needs it; the tests run it in
Triton's interpreter (``TRITON_INTERPRET=1``) on CPU tensors.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from numfmt.formats import _core as fc

BLOCK = 1024


@triton.jit
def _plain(v):
    field = (v.to(tl.int64, bitcast=True) >> 52) & 0x7FF
    return (field >= 623) & (field <= 1423)


@triton.jit
def _tiny(v, daz_field):
    """Nonzero with an exponent field below daz_field: below the format's smallest normal."""
    field = (v.to(tl.int64, bitcast=True) >> 52) & 0x7FF
    return (field < daz_field) & (v != 0)


@triton.jit
def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@triton.jit
def _odd_bits(r, t):
    b = r.to(tl.int64, bitcast=True)
    same = (t > 0) == (r > 0)
    return tl.where(t != 0, tl.where(same, b | 1, (b - 1) | 1), b)


@triton.jit
def _load(ptr, offsets, mask, ONE: tl.constexpr):
    """The operand's values at offsets as float64 (its one value, for a broadcast)."""
    if ONE:
        v = tl.load(ptr + offsets * 0, mask=mask, other=1.0)
    else:
        v = tl.load(ptr + offsets, mask=mask, other=1.0)
    return v.to(tl.float64)


@triton.jit
def _fast_kernel(
    x_ptr,
    y_ptr,
    z_ptr,
    u_ptr,
    out_ptr,
    special_ptr,
    inexact_ptr,
    n,
    shift,
    low,
    top,
    half,
    ulp_scale,
    daz_field,
    OP: tl.constexpr,  # numfmt.arith._core's numbers: ADD 0, SUB 1, MUL 2, DIV 3, FMA 4, SQRT 5
    MODE: tl.constexpr,  # numfmt.formats._core's rounding codes: RNE 0 ... RSTOCH 7
    UNSIGNED: tl.constexpr,
    DAZ: tl.constexpr,
    X1: tl.constexpr,
    Y1: tl.constexpr,
    Z1: tl.constexpr,
    WIDE: tl.constexpr,
    BLOCK: tl.constexpr,
):
    offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    inside = offsets < n
    x = _load(x_ptr, offsets, inside, X1)
    y = _load(y_ptr, offsets, inside, Y1)
    z = _load(z_ptr, offsets, inside, Z1)
    ok = _plain(x)
    if OP == 0 or OP == 1:  # add, sub
        ok = ok & _plain(y)
        if OP == 1:
            y = -y
        r, t = _two_sum(x, y)
    elif OP == 2:  # mul
        ok = ok & _plain(y)
        r = x * y
        t = tl.fma(x, y, -r)
    elif OP == 3:  # div: the exact remainder x - r*y, times y for its sign
        ok = ok & _plain(y)
        r = x / y
        t = -tl.fma(r, y, -x) * y
    elif OP == 4:  # fma
        ok = ok & _plain(y) & _plain(z)
        uh = x * y
        ul = tl.fma(x, y, -uh)
        th, tl_ = _two_sum(z, uh)
        s, st = _two_sum(tl_, ul)
        v = tl.where(s != 0, _odd_bits(s, st).to(tl.float64, bitcast=True), 0.0)
        r, t = _two_sum(th, v)
    else:  # sqrt: x - r*r, exact
        ok = ok & (x > 0)
        r = tl.sqrt(tl.maximum(x, 0.0))
        t = -tl.fma(r, r, -x)
    ok = ok & (r != 0)
    if DAZ:  # an operand below the format's normals is a zero: the general path's. Compared
        # by exponent fields (a float argument would reach the kernel as float32)
        ok = ok & ~_tiny(x, daz_field) & ~_tiny(y, daz_field) & ~_tiny(z, daz_field)
    bits = _odd_bits(r, t)
    mag = bits & 0x7FFFFFFFFFFFFFFF
    neg = bits < 0
    q = mag >> shift
    rem = mag - (q << shift)
    inexact = (rem != 0).to(tl.int64)
    if MODE == 0:  # nearest-even
        q = q + ((rem > half) | ((rem == half) & ((q & 1) == 1))).to(tl.int64)
    elif MODE == 1:  # nearest-away
        q = q + (rem >= half).to(tl.int64)
    elif MODE == 2:  # nearest-zero
        q = q + (rem > half).to(tl.int64)
    elif MODE == 4:  # up
        q = q + inexact * (~neg).to(tl.int64)
    elif MODE == 5:  # down
        q = q + inexact * neg.to(tl.int64)
    elif MODE == 6:  # odd
        q = q | inexact
    elif MODE == 7:  # stochastic
        u = tl.load(u_ptr + offsets, mask=inside, other=1.0)
        q = q + inexact * (u < rem.to(tl.float64) * ulp_scale).to(tl.int64)
    rounded = q << shift
    ok = ok & ((mag >> 52) >= low) & (rounded <= top)
    if UNSIGNED:
        ok = ok & ~neg
    value = (rounded | (bits & -9223372036854775808)).to(tl.float64, bitcast=True)
    if not WIDE:  # a narrow result by way of float32 (exact: its values fit float32)
        value = value.to(tl.float32)
    tl.store(out_ptr + offsets, value.to(out_ptr.dtype.element_ty), mask=inside)
    tl.store(special_ptr + offsets, (~ok).to(tl.int8), mask=inside)
    found = tl.sum(((rem != 0) & ok & inside).to(tl.int64), axis=0)
    tl.atomic_add(inexact_ptr, found)


def fast(op: int, operands, out: torch.Tensor, plan, fast_params, u, daz: bool, min_normal):
    """(special, inexact count): op on operands (contiguous tensors on out's device, each of
    out's length or of one value), rounded into the format and stored into out where the
    fast path finds the result; special marks the elements it leaves."""
    shift, low, top = fast_params
    if shift == 0:  # the kernel's increments assume a bit to cut (binary64 goes the host way)
        raise ValueError("the fused kernel rounds into formats of up to 51 significand bits")
    x, y, z = operands
    n = out.numel()
    if n == 0:
        return torch.zeros(0, dtype=torch.bool, device=out.device), 0
    special = torch.empty(n, dtype=torch.int8, device=out.device)
    inexact = torch.zeros(1, dtype=torch.int64, device=out.device)
    mode = plan[fc.P_MODE]
    draws = u if mode == fc.RSTOCH else out
    _fast_kernel[(triton.cdiv(n, BLOCK),)](
        x,
        y,
        z,
        draws,
        out,
        special,
        inexact,
        n,
        shift,
        low,
        top,
        1 << (shift - 1),
        2.0**-shift,
        _daz_field(min_normal),
        OP=op,
        MODE=mode,
        UNSIGNED=plan[fc.P_SIGN] == 0,
        DAZ=bool(daz),
        X1=x.numel() == 1,
        Y1=y.numel() == 1,
        Z1=z.numel() == 1,
        WIDE=out.dtype == torch.float64,
        BLOCK=BLOCK,
        enable_fp_fusion=False,
    )
    return special.bool(), int(inexact.item())


def _daz_field(min_normal: float) -> int:
    """The float64 exponent field of the format's smallest normal (a power of two). Operands
    below 2^-400 never reach the fast path, so a field clamped at 0 loses nothing."""
    return max(math.frexp(min_normal)[1] - 1 + 1023, 0)
