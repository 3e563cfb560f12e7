"""Activation-aware ranges: each group's clipping chosen by the error the *layer* would see.

A weight's error reaches the layer's output multiplied by its input: an input channel that is
large on real text makes the weights it meets matter more. So, rather than the plain mean
square error of the weights (which can choose ranges that hurt the model, as the lessons show
on SmolLM2), each group's clip ratio minimises ``sum_j a_j (w_j - q_j)^2`` with ``a_j`` the
mean square of input channel j on calibration text, the diagonal of the inputs' Hessian
(llama.cpp's importance matrix weighs its searches the same way; AWQ looks at the same
statistic to protect salient channels).

``output_qparams(weight, hessian, scheme)`` goes one step further: each output channel's clip
ratio (one for all its groups) minimises the error of the layer's output itself on the
calibration inputs, ``(w - q) H (w - q)^T`` with H the inputs' Hessian, cross terms between
inputs included.

The candidates are the clip ratios k / ratios of each group's min-max range, from k = ratios
down to ``low`` (the MSE method's candidates, less those that clip more than half), stored
as the scheme stores scales; the first ratio of least weighted error wins (the widest on
ties).
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch

from numfmt.errors import NumfmtError
from numfmt.quant import grid
from numfmt.quant.calibration import first_least, minmax
from numfmt.quant.granularity import Grouping, PerAxis, PerGroup, PerTensor
from numfmt.quant.qparams import QParams, as_scheme, choose_qparams
from numfmt.quant.schemes import QuantScheme

#: Elements of (rows x candidates x width) worked on at once.
_CHUNK = 1 << 24


def check_int_grid(scheme: QuantScheme, what: str) -> None:
    """The schemes these searches (and GPTQ) take: an integer grid with range scales, per
    tensor, per output channel, or per group of input columns; one message otherwise."""
    g = scheme.granularity
    grouping = (
        isinstance(g, PerTensor)
        or (isinstance(g, PerAxis) and g.axis in (0, -2))
        or (isinstance(g, PerGroup) and g.axis in (-1, 1))
    )
    if scheme.kind != "int" or scheme.scale_rule != "range" or not grouping:
        raise NumfmtError(
            f"{what} take integer grids per tensor, per output channel or per group of input "
            f"columns (int4/group:128, int8/channel, int4/asym/group:64 ...), not {scheme}"
        )


def _ratios(ratios: int, low: float, device) -> torch.Tensor:
    """The candidate clip ratios k / ratios, from 1 down to ``low``."""
    if not 0 < low <= 1 or ratios < 1:
        raise NumfmtError(f"ratios run from 1 down to low in (0, 1], not {low} ({ratios} steps)")
    last = max(1, math.ceil(low * ratios))
    return torch.arange(ratios, last - 1, -1, dtype=torch.float64, device=device) / ratios


def weighted_qparams(
    weight: torch.Tensor,
    importance: torch.Tensor,
    scheme: QuantScheme | str,
    *,
    ratios: int = 100,
    low: float = 0.5,
) -> QParams:
    """QParams of ``weight`` (out, in) whose clip ratios minimise the squared error weighted
    by ``importance`` (in,), one ratio per group.

    Example:
        >>> w = torch.tensor([[1.0, 0.2, -0.45, 0.3]])
        >>> plain = choose_qparams(w, "int2/channel")
        >>> tuned = weighted_qparams(w, torch.tensor([0.0, 1.0, 1.0, 1.0]), "int2/channel")
        >>> float(plain.scale[0]), round(float(tuned.scale[0]), 2)  # 1.0 matters not: clip it
        (1.0, 0.5)
    """
    s = as_scheme(scheme)
    check_int_grid(s, "activation-aware ranges")
    _ratios(ratios, low, "cpu")  # the arguments checked before any work
    w = weight.detach().to(torch.float64)
    a = importance.detach().to(device=w.device, dtype=torch.float64).reshape(-1)
    if w.dim() != 2 or a.numel() != w.shape[1]:
        raise NumfmtError(
            f"the importance has {a.numel()} values; the weight {tuple(w.shape)} has "
            f"{w.shape[1] if w.dim() == 2 else '?'} input columns"
        )
    if not bool(torch.isfinite(a).all()) or bool((a < 0).any()):
        raise NumfmtError("the importance must be finite and at least zero")
    grouping = Grouping(tuple(w.shape), s.granularity)
    spread = a.expand(w.shape[0], w.shape[1])
    parts = [
        _weighted_block(rows, weights, s, ratios, low)
        for rows, weights in zip(grouping.blocks(w), grouping.blocks(spread), strict=True)
    ]
    qp0 = choose_qparams(weight.detach(), s)

    def joined(field: str):
        ref = getattr(qp0, field)
        if ref is None:
            return None
        return grouping.join_params([getattr(part, field) for part in parts]).reshape(ref.shape)

    return replace(
        qp0, scale=joined("scale"), zero_point=joined("zero_point"), minimum=joined("minimum")
    )


def _weighted_block(rows: torch.Tensor, weights: torch.Tensor, s: QuantScheme, ratios, low):
    """The stored scales (and zero points or minima) of one block of groups (rows), each
    row's clip ratio of least weighted squared error."""
    from numfmt.quant import _xp

    xp = _xp.namespace(rows)
    lo0, hi0 = minmax(xp, rows, s)
    r = _ratios(ratios, low, rows.device)
    steps = r.numel()
    cand = grid.scales(xp, (lo0[:, None] * r).reshape(-1), (hi0[:, None] * r).reshape(-1), s)

    def shaped(t):
        return None if t is None else t.reshape(rows.shape[0], steps)

    scales, zeros, minima = shaped(cand.scale), shaped(cand.zero_point), shaped(cand.minimum)
    errors = torch.empty(rows.shape[0], steps, dtype=torch.float64, device=rows.device)
    per = max(1, _CHUNK // max(1, steps * rows.shape[1]))
    for i in range(0, rows.shape[0], per):
        part = slice(i, i + per)
        x = rows[part][:, None, :]
        sc = scales[part][:, :, None]
        if minima is not None:
            x = x - minima[part][:, :, None]
        div = torch.where(sc > 0, sc, torch.full_like(sc, float("inf")))
        z = 0.0 if zeros is None else zeros[part].to(torch.float64)[:, :, None]
        lo_q = 0.0 if minima is not None else s.qmin - z
        hi_q = s.qmax - (0.0 if minima is not None else z)
        q = torch.clamp(torch.round(x / div), lo_q, hi_q)
        err = q * sc - x
        errors[part] = torch.sum(weights[part][:, None, :] * err * err, dim=2)
    chosen = r[first_least(xp, errors)]
    return grid.scales(xp, lo0 * chosen, hi0 * chosen, s)


def output_qparams(
    weight: torch.Tensor,
    hessian: torch.Tensor,
    scheme: QuantScheme | str,
    *,
    ratios: int = 100,
    low: float = 0.5,
) -> QParams:
    """QParams of ``weight`` (out, in) whose clip ratio, one per output channel, minimises
    that channel's output error ``d H d^T`` (d: its quantization error) on the inputs whose
    Hessian ``hessian`` (in, in) is; the ratios k / ratios from 1 down to ``low``."""
    s = as_scheme(scheme)
    check_int_grid(s, "output-aware ranges")
    w = weight.detach().to(torch.float64)
    h = hessian.detach().to(device=w.device, dtype=torch.float64)
    if w.dim() != 2 or tuple(h.shape) != (w.shape[1], w.shape[1]):
        raise NumfmtError(
            f"the Hessian is {tuple(h.shape)}; the weight {tuple(w.shape)} needs "
            f"({w.shape[1]}, {w.shape[1]})"
        )
    if not bool(torch.isfinite(h).all()):
        raise NumfmtError("the Hessian holds NaN or infinite values")
    from numfmt.quant import _xp
    from numfmt.quant.qparams import dequantize, quantize

    candidates = _ratios(ratios, low, "cpu")
    base = choose_qparams(weight.detach(), s)
    errors = torch.empty(w.shape[0], candidates.numel(), dtype=torch.float64, device=w.device)
    params = []
    xp = _xp.namespace(w)
    for k, r in enumerate(candidates.tolist()):
        lo = torch.as_tensor(base.lo, dtype=torch.float64, device=w.device) * r
        hi = torch.as_tensor(base.hi, dtype=torch.float64, device=w.device) * r
        picked = grid.scales(xp, lo.reshape(-1), hi.reshape(-1), s)
        qp = replace(
            base,
            scale=picked.scale.reshape(base.scale.shape),
            zero_point=None
            if picked.zero_point is None
            else picked.zero_point.reshape(base.zero_point.shape),
            minimum=None if picked.minimum is None else picked.minimum.reshape(base.minimum.shape),
        )
        d = dequantize(quantize(w, qp), qp).to(torch.float64) - w
        errors[:, k] = torch.sum((d @ h) * d, dim=1)
        params.append(qp)
    best = first_least(xp, errors)  # per output channel

    def gather(field: str):
        ref = getattr(base, field)
        if ref is None:
            return None
        stack = torch.stack([getattr(qp, field).reshape(ref.shape) for qp in params])
        if ref.dim() == 0:  # per tensor: one ratio for the whole tensor
            return stack[int(torch.argmin(errors.sum(dim=0)))]
        index = best.reshape(1, -1, *([1] * (ref.dim() - 1))).expand(1, *ref.shape)
        return torch.gather(stack, 0, index.to(stack.device))[0]

    return replace(
        base,
        scale=gather("scale"),
        zero_point=gather("zero_point"),
        minimum=gather("minimum"),
    )
