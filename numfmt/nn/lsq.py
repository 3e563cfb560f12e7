"""Learned step size quantization (LSQ, Esser et al., 2020): the scale is a parameter that
training moves, with its own gradient.

Forward, for codes from -Qn to Qp: v_hat = round(clamp(v / s, -Qn, Qp)) * s. Backward:

* to v, the straight-through estimator: 1 where -Qn < v / s < Qp, 0 where v was clipped;
* to s (the paper's equation 3): -v/s + round(v/s) inside the range, -Qn below it, Qp above,
  each times the gradient scale g = 1 / sqrt(N * Qp) (N: the elements the scale serves), which
  keeps the scale's update in proportion with the weights' (section 2.2).

A scale is a scalar (per tensor) or a column, one per row (per channel).

    >>> import torch
    >>> v = torch.tensor([-1.0, 0.26, 0.9], requires_grad=True)
    >>> s = torch.tensor(0.25, requires_grad=True)
    >>> out = lsq_quantize(v, s, bits=3)  # codes -3 .. 3: the step 0.25 reaches 0.75
    >>> out.tolist()
    [-0.75, 0.25, 0.75]
"""

from __future__ import annotations

import math

import torch

from numfmt.errors import NumfmtError


def code_range(bits: int, signed: bool = True) -> tuple[int, int]:
    """(Qn, Qp): codes from -Qn to Qp; signed grids are symmetric, 2^(b-1) - 1 each way."""
    if not 2 <= bits <= 16:
        raise NumfmtError(f"LSQ takes 2 to 16 bits, not {bits}")
    return (2 ** (bits - 1) - 1, 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)


def grad_scale(elements: int, bits: int, signed: bool = True) -> float:
    """The paper's gradient scale 1 / sqrt(N * Qp) for a scale serving N elements."""
    return 1.0 / math.sqrt(elements * code_range(bits, signed)[1])


class _LSQ(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v, s, qn, qp, g):
        q = v / s
        ctx.save_for_backward(q)
        ctx.qn, ctx.qp, ctx.g = qn, qp, g
        return torch.round(torch.clamp(q, -qn, qp)) * s

    @staticmethod
    def backward(ctx, grad):
        (q,) = ctx.saved_tensors
        below, above = q <= -ctx.qn, q >= ctx.qp
        inside = ~(below | above)
        grad_v = grad * inside.to(grad.dtype)
        ends = torch.where(below, torch.full_like(q, -ctx.qn), torch.full_like(q, ctx.qp))
        local = torch.where(inside, torch.round(q) - q, ends)
        # the scale's gradient, one per element: autograd sums it to the scale's shape
        grad_s = grad * local * ctx.g
        return grad_v, grad_s, None, None, None


def lsq_quantize(
    v: torch.Tensor,
    scale: torch.Tensor,
    bits: int = 8,
    *,
    signed: bool = True,
    gradient_scale: float | None = None,
) -> torch.Tensor:
    """v fake-quantized with a learnable ``scale`` (LSQ); the scale's gradient is summed over
    the elements it serves (a scalar, or a column broadcast along each row)."""
    qn, qp = code_range(bits, signed)
    if torch.any(scale <= 0):
        raise NumfmtError("an LSQ scale must stay positive")
    g = (
        grad_scale(v.numel() // max(scale.numel(), 1), bits, signed)
        if gradient_scale is None
        else gradient_scale
    )
    return _LSQ.apply(v, scale, qn, qp, g)


def lsq_init(v: torch.Tensor, bits: int = 8, *, signed: bool = True) -> torch.Tensor:
    """The paper's initial scale, 2 * mean(|v|) / sqrt(Qp)."""
    return 2 * v.detach().abs().mean() / math.sqrt(code_range(bits, signed)[1])
