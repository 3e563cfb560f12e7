"""``numfmt.arith.matmul``'s kernels as whole-tensor torch operations, for a GPU.

The same arithmetic as ``_mm_jit``, step by step, so that the bits are the same:

* ``fused``: for each group of K, every product of the group for every output at once
  ((M, group, N) exact float64 products, in slabs of columns that fit memory), the largest
  exponent among them and the accumulator's, the terms cut to whole numbers of the group's
  last place and summed (exact in any order), and the sum rounded into the accumulator by
  ``elementwise.apply`` (its device path: the rounding on the float64's bits, the general
  path on the host for the few elements that need it).
* ``columns``: the orders sequential, kahan and tile, one step of K for every output at
  once, each operation one ``elementwise.apply``.

Promotion, block scales and the orders' draws follow ``_mm_jit``; stochastic rounding and
pairwise sums stay on the host (their draws come from ``_mm_jit``'s hash). Operands are
prepared on the host by ``matmul.run`` (O(MK + KN) work); only the O(MKN) part runs here.
"""

from __future__ import annotations

import numpy as np
import torch

from numfmt.arith import elementwise
from numfmt.arith.context import Context

#: Elements of one (M, group, N) slab of products: columns are taken in slabs this size.
SLAB = 1 << 25
_ZERO_EXPONENT = -126  # what MMA-Sim gives a zero, in any format


def _power(e: torch.Tensor) -> torch.Tensor:
    """2^e for integer tensors -1022 <= e <= 1023, from the bits (exact on any device)."""
    return ((e.to(torch.int64) + 1023) << 52).view(torch.float64)


def _top(x: torch.Tensor, emin: int) -> torch.Tensor:
    """The accumulator's exponent as the aligner reads it (``_mm_jit._top``)."""
    e = ((x.view(torch.int64) >> 52) & 0x7FF) - 1023
    e = e.clamp(min=emin)
    return torch.where(x != 0, e, torch.full_like(e, _ZERO_EXPONENT))


_CUTS = {"toward-zero": torch.trunc, "nearest-even": torch.round}
_CUTS.update(down=torch.floor, up=torch.ceil)


def _round(v: torch.Tensor, ctx: Context) -> torch.Tensor:
    return elementwise.apply("round", (v,), ctx).to(torch.float64)


def _operands(x, y, sa, sb, device):
    """x (M, K), y as (K, N) and the scales as float64 tensors on the device."""
    y = np.ascontiguousarray(y.T)
    return tuple(torch.as_tensor(v, dtype=torch.float64, device=device) for v in (x, y, sa, sb))


def _promote(part, total, sa, sb, blk, p) -> torch.Tensor:
    """total + part * (the block's scales), one rounding into promote_to (``_mm_jit``'s
    fused multiply-add)."""
    scale = sa[:, blk, None] * sb[None, :, blk]
    return elementwise.apply("fma", (part, scale, total), p.promote_to).to(torch.float64)


def fused(x, y, ex, ey, sa, sb, every, p, device) -> np.ndarray:
    """``_mm_jit.fused`` for all rows: x (M, K), y (N, K), ex and ey their exponents, sa
    (M, blocks), sb (N, blocks); the result as float64 on the host."""
    fu = p.fused
    acc_fmt = p.accumulator.fmt
    xt, yt, sat, sbt = _operands(x, y, sa, sb, device)
    ext = torch.as_tensor(ex, dtype=torch.int32, device=device)
    eyt = torch.as_tensor(np.ascontiguousarray(ey.T), dtype=torch.int32, device=device)
    m, k = xt.shape
    n = yt.shape[1]
    groups = k // fu.size
    per_block = every // fu.size if every else groups
    cut = _CUTS[fu.rounding]
    part = torch.zeros((m, n), dtype=torch.float64, device=device)
    total = torch.zeros_like(part)
    width = max(1, SLAB // max(1, m * fu.size))
    for g in range(groups):
        lo, hi = g * fu.size, (g + 1) * fu.size
        s = torch.empty_like(part)
        top = torch.empty((m, n), dtype=torch.int64, device=device)
        for j0 in range(0, n, width):  # a slab of columns: (M, group, width) products
            j1 = min(n, j0 + width)
            e = ext[:, lo:hi, None] + eyt[None, lo:hi, j0:j1]
            t = torch.maximum(e.amax(dim=1).to(torch.int64), _top(part[:, j0:j1], acc_fmt.emin))
            up = _power(fu.bits - t)
            prod = xt[:, lo:hi, None] * yt[None, lo:hi, j0:j1]
            s[:, j0:j1] = cut(part[:, j0:j1] * up) + cut(prod * up[:, None, :]).sum(dim=1)
            top[:, j0:j1] = t
        v = s * _power(top - fu.bits)
        if not bool(torch.isfinite(v).all()):
            raise HostOnly  # an infinity among the terms: the host kernel's way
        part = _round(v, p.accumulator)
        if every and ((g + 1) % per_block == 0 or g == groups - 1):
            total = _promote(part, total, sat, sbt, g // per_block, p)
            part = torch.zeros_like(part)
    return (total if every else part).cpu().numpy()


def columns(x, y, sa, sb, every, p, device) -> np.ndarray:
    """``_mm_jit.columns`` (and ``general``'s sequential, kahan and tile orders) for all
    outputs at once, a step of K at a time."""
    xt, yt, sat, sbt = _operands(x, y, sa, sb, device)
    m, k = xt.shape
    n = yt.shape[1]
    block = every or k
    acc = p.accumulator

    def add(u, v):
        return elementwise.apply("add", (u, v), acc).to(torch.float64)

    zero = torch.zeros((m, n), dtype=torch.float64, device=device)
    total = zero
    for k0 in range(0, k, block):
        k1 = min(k0 + block, k)
        part, comp, run = zero, zero, zero
        for i in range(k0, k1):
            a, b = xt[:, i, None], yt[None, i, :]
            term = None
            if p.products is not None:
                term = elementwise.apply("mul", (a, b), p.products).to(torch.float64)
            if p.order == "kahan":  # y = a*b - comp, rounded once
                if term is None:
                    step = elementwise.apply("fma", (a, b, -comp), acc).to(torch.float64)
                else:
                    step = add(term, -comp)
                t = add(part, step)
                comp = add(add(t, -part), -step)
                part = t
                continue
            if term is None:
                run = elementwise.apply("fma", (a, b, run), acc).to(torch.float64)
            else:
                run = add(run, term)
            if p.order == "tile" and ((i - k0 + 1) % p.tile == 0 or i == k1 - 1):
                part, run = add(part, run), zero
        if p.order == "sequential":
            part = run
        total = _promote(part, total, sat, sbt, k0 // block, p) if every else part
    return total.cpu().numpy()


class HostOnly(Exception):
    """What the device kernels cannot finish as the host's do: run it on the host."""
