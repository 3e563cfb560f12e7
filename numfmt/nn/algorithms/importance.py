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
from numfmt.quant import _xp, grid
from numfmt.quant.calibration import first_least, minmax
from numfmt.quant.granularity import Grouping, PerAxis, PerGroup, PerTensor
from numfmt.quant.qparams import QParams, as_scheme, choose_qparams, dequantize, quantize
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

    Examples:
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
    xp = _xp.namespace(rows)
    lo0, hi0 = minmax(xp, rows, s)
    r = _ratios(ratios, low, rows.device)
    steps = r.numel()
    cand = grid.scales(xp, (lo0[:, None] * r).reshape(-1), (hi0[:, None] * r).reshape(-1), s)

    def shaped(t):
        return None if t is None else t.reshape(rows.shape[0], steps)

    scales, zeros, minima = shaped(cand.scale), shaped(cand.zero_point), shaped(cand.minimum)
    width = rows.shape[1]
    errors = torch.empty(rows.shape[0], steps, dtype=torch.float64, device=rows.device)
    per = max(1, _CHUNK // max(1, steps * width))
    for i in range(0, rows.shape[0], per):
        part = slice(i, i + per)
        n = rows[part].shape[0]
        x = rows[part][:, None, :].expand(n, steps, width).reshape(-1, width)
        sc = _column(scales, part)
        minimum = _column(minima, part)
        if minimum is not None:  # measured from the minimum, as the codes are
            x = x - minimum
        params = {
            "divisor": grid.divisors(xp, sc),
            "scale": sc,
            "zero": _column(zeros, part),
            "minimum": None,
        }
        fake = torch.empty_like(x)  # the grid's own rounding: quant.grid, not a copy of it
        grid.int_rows_into(xp, x, params, s, fake, fake, finite=True, fake=True)
        err = (fake - x).reshape(n, steps, width)
        errors[part] = torch.sum(weights[part][:, None, :] * err * err, dim=2)
    chosen = r[first_least(xp, errors)]
    return grid.scales(xp, lo0 * chosen, hi0 * chosen, s)


def _column(t: torch.Tensor | None, part: slice) -> torch.Tensor | None:
    """Rows ``part`` of a (groups, candidates) parameter as one float64 column."""
    return None if t is None else t[part].to(torch.float64).reshape(-1, 1)


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
    return clipped_qparams(
        weight, scheme, output_ratios(weight, hessian, scheme, ratios=ratios, low=low)
    )


def output_ratios(
    weight: torch.Tensor,
    hessian: torch.Tensor,
    scheme: QuantScheme | str,
    *,
    ratios: int = 100,
    low: float = 0.5,
) -> torch.Tensor:
    """The clip ratio of each output channel (out,) that :func:`output_qparams` chooses (per
    tensor: one ratio, repeated)."""
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
    candidates = _ratios(ratios, low, w.device)
    base = choose_qparams(weight.detach(), s)
    errors = torch.empty(w.shape[0], candidates.numel(), dtype=torch.float64, device=w.device)
    for k in range(candidates.numel()):
        qp = _clip(base, candidates[k], s)
        d = dequantize(quantize(w, qp), qp).to(torch.float64) - w
        errors[:, k] = torch.sum((d @ h) * d, dim=1)
    if base.scale.dim() == 0:  # per tensor: one ratio for the whole tensor
        best = first_least(_xp.namespace(w), errors.sum(dim=0)[None, :]).expand(w.shape[0])
    else:
        best = first_least(_xp.namespace(w), errors)
    return candidates[best]


def clipped_qparams(
    weight: torch.Tensor, scheme: QuantScheme | str, ratio: torch.Tensor | float
) -> QParams:
    """QParams of ``weight`` (out, in) whose min-max ranges are scaled by ``ratio``: one
    number, or one per output channel (out,) for all of that channel's groups (per tensor:
    the ratios must agree).

    Examples:
        >>> w = torch.tensor([[1.0, -0.5], [2.0, 0.25]])
        >>> qp = clipped_qparams(w, "int4/channel", torch.tensor([1.0, 0.5]))
        >>> [round(float(s) * 7, 3) for s in qp.scale]  # each row's range: 1, then 2 x 0.5
        [1.0, 1.0]
    """
    s = as_scheme(scheme)
    check_int_grid(s, "clip ratios")
    base = choose_qparams(weight.detach(), s)
    r = torch.as_tensor(ratio, dtype=torch.float64, device=weight.device).reshape(-1)
    if not bool(torch.isfinite(r).all()) or bool((r <= 0).any()):
        raise NumfmtError("clip ratios are finite and above zero")
    if r.numel() not in (1, weight.shape[0]):
        raise NumfmtError(
            f"{r.numel()} clip ratios for a weight of {weight.shape[0]} output channels"
        )
    if base.scale.dim() == 0:
        if bool((r != r[0]).any()):
            raise NumfmtError("a per-tensor scheme takes one clip ratio")
        r = r[0]
    elif r.numel() > 1:
        r = r.reshape(-1, *([1] * (base.scale.dim() - 1)))
    return _clip(base, r, s)


def _clip(base: QParams, ratio: torch.Tensor, s: QuantScheme) -> QParams:
    """``base`` (min-max QParams) with its ranges scaled by ``ratio`` (broadcast over them)."""
    lo = torch.as_tensor(base.lo, dtype=torch.float64, device=ratio.device) * ratio
    hi = torch.as_tensor(base.hi, dtype=torch.float64, device=ratio.device) * ratio
    shape = base.scale.shape
    lo, hi = lo.expand(shape).reshape(-1), hi.expand(shape).reshape(-1)
    picked = grid.scales(_xp.namespace(lo), lo, hi, s)

    def shaped(value, ref):
        return None if ref is None else value.reshape(ref.shape)

    return replace(
        base,
        scale=shaped(picked.scale, base.scale),
        zero_point=shaped(picked.zero_point, base.zero_point),
        minimum=shaped(picked.minimum, base.minimum),
        lo=lo.reshape(shape),
        hi=hi.reshape(shape),
    )
