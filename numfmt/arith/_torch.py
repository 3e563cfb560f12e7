"""The elementwise kernel's fast path in torch operations, for tensors on a GPU.

The same arithmetic as ``_jit``'s vectorised pass, written as whole-tensor operations so that
a CUDA tensor's operation runs on its device: the exact result as a float64 and the sign of
its remainder (TwoSum; TwoProd by Veltkamp's split, since torch has no exact fused
multiply-add on every device: ``_core``'s own functions, whose operators work on tensors as
on floats; the remainders of division and square root), rounded to odd,
then rounded into the format on the float64's own bits. Each torch operation is a kernel of its
own, rounded as IEEE 754 says, so no step is contracted into a fused one behind our back.

What the fast path cannot finish (operands that need scaling, results that are tiny, overflow,
are zero or NaN) is marked; the caller sends those few elements through the general path on
the host. Imported only when a tensor needs it.
"""

from __future__ import annotations

import torch

from numfmt.arith import _core as ac
from numfmt.arith._core import two_prod as _two_prod
from numfmt.arith._core import two_sum as _two_sum
from numfmt.formats import _core as fc

_MAGNITUDE = (1 << 63) - 1
_SIGN = -(1 << 63)


def _bits(x: torch.Tensor) -> torch.Tensor:
    return x.view(torch.int64)


def _plain(x: torch.Tensor) -> torch.Tensor:
    """Nonzero and finite with |x| in [2^-400, 2^401): no error-free step can overflow or
    underflow (``_jit._plain``)."""
    field = (_bits(x) >> 52) & 0x7FF
    return (field >= 623) & (field <= 1423)


def _odd_bits(r, t):
    """The bits of r + t rounded to odd (``_jit._odd_bits``)."""
    b = _bits(r)
    same = (t > 0) == (r > 0)
    return torch.where(t != 0, torch.where(same, b | 1, (b - 1) | 1), b)


def _exact(op: int, x, y, z):
    """(ok, r, t) as ``_jit._fast`` gives them."""
    ok = _plain(x)
    if op in (ac.ADD, ac.SUB):
        ok &= _plain(y)
        r, t = _two_sum(x, y if op == ac.ADD else -y)
    elif op == ac.MUL:
        ok &= _plain(y)
        r, t = _two_prod(x, y)
    elif op == ac.DIV:
        ok &= _plain(y)
        r = x / y
        ph, pl = _two_prod(r, y)
        t = ((x - ph) - pl) * y  # the exact remainder, times y for its sign
    elif op == ac.FMA:
        ok &= _plain(y) & _plain(z)
        uh, ul = _two_prod(x, y)
        th, tl = _two_sum(z, uh)
        s, st = _two_sum(tl, ul)
        v = torch.where(s != 0, _odd_bits(s, st).view(torch.float64), torch.zeros_like(s))
        r, t = _two_sum(th, v)
    else:
        ok &= x > 0
        r = torch.sqrt(torch.clamp(x, min=0.0))
        ph, pl = _two_prod(r, r)
        t = (x - ph) - pl
    return ok & (r != 0), r, t


def _increment(q, rem, half, mode: int, neg, up):
    """``numfmt.formats._core.increment``, with the mode chosen here rather than per element."""
    inexact = (rem != 0).to(torch.int64)
    if mode == fc.RTZ:
        return q
    if mode == fc.RNE:
        return q + ((rem > half) | ((rem == half) & (q & 1).bool())).to(torch.int64)
    if mode == fc.RNA:
        return q + (rem >= half).to(torch.int64)
    if mode == fc.RNZ:
        return q + (rem > half).to(torch.int64)
    if mode == fc.RODD:
        return q | inexact
    if mode == fc.RUP:
        return q + inexact * (~neg).to(torch.int64)
    if mode == fc.RDOWN:
        return q + inexact * neg.to(torch.int64)
    return q + inexact * up.to(torch.int64)  # stochastic


def fast(op: int, operands, out, plan, fast_params, u, daz: bool, min_normal: float):
    """(special, inexact count): op on operands (float tensors, each of out's length or of one
    value), rounded into the format and stored into out where the fast path finds the
    result; special marks the elements it leaves, and the inexact count covers the others.
    u: the uniform draws of stochastic rounding (a tensor like out), or None."""
    x, y, z = (v.to(torch.float64) for v in operands)
    ok, r, t = _exact(op, x, y, z)
    if daz:  # an operand below the format's normals is a zero: the general path's
        for v in (x, y, z):
            ok &= ~((v.abs() < min_normal) & (v != 0))
    shift, low, top = fast_params
    mode = plan[fc.P_MODE]
    bits = _odd_bits(r, t)
    mag = bits & _MAGNITUDE
    neg = bits < 0
    q = mag >> shift
    rem = mag - (q << shift)
    up = None
    if mode == fc.RSTOCH:
        up = u < rem.to(torch.float64) * 2.0**-shift
    if shift > 0:
        q = _increment(q, rem, (1 << shift) >> 1, mode, neg, up)
    rounded = q << shift
    ok &= ((mag >> 52) >= low) & (rounded <= top)
    if plan[fc.P_SIGN] == 0:
        ok &= ~neg
    values = (rounded | (bits & _SIGN)).view(torch.float64)
    out.copy_(values.expand(out.shape))
    inexact = int(((rem != 0) & ok).sum())
    return (~ok).expand(out.shape), inexact
