"""GPTQ (Frantar et al., 2022): quantize a layer's weight column by column, and let the columns
not yet quantized absorb each column's error, weighted by what the layer's inputs look like.

For a Linear layer y = W x, the error of the output over calibration inputs X is
``tr((W - Q) H (W - Q)^T)`` with ``H = 2 X^T X / n``, the inputs' second moment (the Hessian of
that error). Round-to-nearest minimises ``|W - Q|`` element by element and ignores H; GPTQ
quantizes one input column at a time and moves the remaining columns to cancel what that
rounding did to the output (the optimal brain surgeon update):

    err = (w_i - q_i) / [H^-1]_ii,      W[:, j] -= err * [H^-1]_ij   for the columns j after i

with H^-1 taken through a Cholesky factor (the columns already done drop out), a damping of
``damp`` times the mean of H's diagonal added first (H is often singular: dead inputs), columns
in blocks whose updates to the rest are applied at once (``block``), and optionally the columns
taken in order of decreasing H_ii (``act_order``: the inputs that matter most first).

Any integer scheme of the quantization layer works: per tensor, per output channel, or per
group of input columns (each group's scale is chosen when the algorithm reaches it, from the
weights as they are then, or, with ``act_order``, from the original weights, so that groups stay
contiguous), symmetric, with a zero point, or with a float minimum, by min-max or MSE ranges.
The result is an ordinary :class:`~numfmt.quant.QuantizedTensor` (codes and scales): only
which codes were chosen differs from round-to-nearest.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Any

import torch

from numfmt.errors import NumfmtError, NumfmtWarning
from numfmt.nn.algorithms.importance import check_int_grid, weighted_qparams
from numfmt.quant import _xp, grid
from numfmt.quant.granularity import PerAxis, PerGroup
from numfmt.quant.qparams import QParams, as_scheme, choose_qparams, quantize
from numfmt.quant.schemes import QuantScheme
from numfmt.quant.tensor import QuantizedTensor


def check_scheme(scheme: QuantScheme) -> None:
    """GPTQ rounds onto an integer grid by nearest-even, per tensor, channel or group of
    input columns: refuse anything else with one message."""

    check_int_grid(scheme, "GPTQ's weights")
    if scheme.rounding.value != "nearest-even":
        raise NumfmtError(f"GPTQ rounds to nearest; {scheme.rounding.value} rounding is not it")


class _Grid:
    """Round one column (a value per output row) onto per-row grids: the quantization
    layer's own int grid (``quant.grid.int_rows_into``, fake-quantized), on torch."""

    def __init__(self, scheme: QuantScheme, scale, zero=None, minimum=None) -> None:
        self.scheme = scheme
        s = scale.to(torch.float64)[:, None]

        def column(a):
            return None if a is None else a.to(torch.float64)[:, None]

        self.params = {
            "divisor": grid.divisors(_xp.namespace(s), s),
            "scale": s,
            "zero": column(zero),
            "minimum": column(minimum),
        }

    def __call__(self, w: torch.Tensor) -> torch.Tensor:
        rows = w.to(torch.float64)[:, None]
        xp = _xp.namespace(rows)
        buf = torch.empty_like(rows)
        grid.int_rows_into(xp, rows, self.params, self.scheme, buf, buf, finite=True, fake=True)
        return buf[:, 0]


def _row_params(qp: QParams, rows: int) -> tuple[Any, Any, Any]:
    """A QParams' scale, zero point and minimum as one value per output row (a per-tensor
    scale repeated); None where the scheme has none."""

    def per_row(a):
        if a is None:
            return None
        a = a.reshape(-1)
        return a.expand(rows) if a.numel() == 1 else a

    return per_row(qp.scale), per_row(qp.zero_point), per_row(qp.minimum)


def _inverse_factor(h: torch.Tensor, damp: float, name: str) -> torch.Tensor:
    """The upper Cholesky factor of (H + damping)^-1; more damping, with a warning, where H
    is not positive definite."""
    mean = float(torch.mean(torch.diagonal(h)))
    eye = torch.eye(h.shape[0], dtype=h.dtype, device=h.device)
    for attempt in range(4):
        # more damping after a failure, from at least 1e-4 (damp may be 0)
        fraction = damp if attempt == 0 else max(damp, 1e-4) * 10**attempt
        lam = fraction * (mean if mean > 0 else 1.0)
        factor, info = torch.linalg.cholesky_ex(h + lam * eye)
        if int(info) == 0:
            if attempt:
                warnings.warn(
                    f"{name}: the inputs' Hessian is not positive definite; dampened by "
                    f"{fraction:g} of its mean diagonal instead of {damp:g}",
                    NumfmtWarning,
                    stacklevel=4,
                )
            inverse = torch.cholesky_inverse(factor)
            return torch.linalg.cholesky(inverse, upper=True)
    raise NumfmtError(
        f"{name}: the inputs' Hessian stays singular even dampened by {fraction:g} of its "
        "mean diagonal; give more (or more varied) calibration text"
    )


def gptq_weight(
    weight: torch.Tensor,
    hessian: torch.Tensor,
    scheme: QuantScheme | str,
    *,
    damp: float = 0.01,
    block: int = 128,
    act_order: bool = False,
    weighted_ranges: bool = False,
    name: str = "the layer",
) -> QuantizedTensor:
    """A weight (out_features, in_features) quantized by GPTQ, given the Hessian of its
    inputs (in_features, in_features; ``2 X^T X / n``). The arithmetic is float64.

    With ``weighted_ranges`` each scale's clip range is chosen by the squared error weighted
    by the inputs' mean squares (H's diagonal; ``numfmt.nn.algorithms.importance``) rather
    than by the scheme's own method.

    Examples:
        >>> import torch
        >>> w, x = torch.randn(16, 64), torch.randn(512, 64)
        >>> qt = gptq_weight(w, 2 * x.T @ x / 512, "int4/group:32")
        >>> qt.codes.shape, str(qt.scheme)
        (torch.Size([16, 64]), 'int4/group:32')
    """
    s = as_scheme(scheme)
    check_scheme(s)
    if not 0 <= damp <= 1:
        raise NumfmtError(f"damp is a fraction of the mean diagonal, 0 to 1, not {damp}")
    if weight.dim() != 2:
        raise NumfmtError(f"GPTQ takes a 2-D weight, not one of shape {tuple(weight.shape)}")
    rows, cols = weight.shape
    if tuple(hessian.shape) != (cols, cols):
        raise NumfmtError(
            f"{name}: the Hessian is {tuple(hessian.shape)}; the weight's inputs need "
            f"({cols}, {cols})"
        )
    original = weight.detach()
    w = original.to(torch.float64).clone()
    h = hessian.detach().to(device=w.device, dtype=torch.float64).clone()
    if not bool(torch.isfinite(w).all()) or not bool(torch.isfinite(h).all()):
        raise NumfmtError(f"{name}: the weight or its Hessian holds NaN or infinite values")
    dead = torch.diagonal(h) == 0
    h[dead, dead] = 1.0  # an input that is always zero: its column cannot matter
    w[:, dead] = 0.0

    importance = torch.diagonal(h).clone() if weighted_ranges else None

    def ranges(values, scheme, columns=None):
        """QParams of some weights: the scheme's method, or activation-weighted ranges."""
        if importance is None:
            return choose_qparams(values, scheme)

        return weighted_qparams(
            values, importance if columns is None else importance[columns], scheme
        )

    qp0 = ranges(original, s)
    group = s.granularity.size if isinstance(s.granularity, PerGroup) else None
    order = torch.arange(cols, device=w.device)
    if act_order:
        order = torch.argsort(torch.diagonal(h), descending=True, stable=True)
        w, h = w[:, order], h[order][:, order]
    hinv = _inverse_factor(h, damp, name)
    order_host = order.tolist()  # column -> original column, without a device sync each

    grids: dict[int, _Grid] = {}  # the grid of each group (or the one grid, key 0)
    if group is None or act_order:  # scales fixed up front, from the original weights
        if group is None:
            grids[0] = _Grid(s, *_row_params(qp0, rows))
        else:
            scale, zero, minimum = qp0.scale, qp0.zero_point, qp0.minimum
            for g in range(scale.shape[1]):
                grids[g] = _Grid(
                    s,
                    scale[:, g],
                    None if zero is None else zero[:, g],
                    None if minimum is None else minimum[:, g],
                )
    per_row = s.with_(granularity=PerAxis(0))
    chosen: dict[int, QParams] = {}

    def grid_of(column: int, current) -> _Grid:
        """The grid of a (permuted) column; a new group's scales chosen from the weights as
        GPTQ has left them so far (without act_order), when its first column comes."""
        if group is None:
            return grids[0]
        g = order_host[column] // group
        if g not in grids:
            qp = ranges(current(column + group), per_row, order[column : column + group])
            chosen[g] = qp
            grids[g] = _Grid(s, *_row_params(qp, rows))
        return grids[g]

    q = torch.zeros_like(w)
    for start in range(0, cols, block):
        stop = min(start + block, cols)
        w1 = w[:, start:stop].clone()
        err1 = torch.zeros_like(w1)
        hinv1 = hinv[start:stop, start:stop]
        for i in range(stop - start):
            column = start + i

            def current(end, i=i, w1=w1, err1=err1, start=start, stop=stop):
                """Columns i .. end of the weights as updated so far: this block's copy, and
                past the block the columns with this block's pending updates applied."""
                if end <= stop:
                    return w1[:, i : end - start]
                pending = err1[:, :i] @ hinv[start : start + i, stop:end]
                return torch.cat([w1[:, i:], w[:, stop:end] - pending], dim=1)

            d = hinv1[i, i]
            qc = grid_of(column, current)(w1[:, i])
            q[:, column] = qc
            err = (w1[:, i] - qc) / d
            w1[:, i:] -= err[:, None] * hinv1[i, i:][None, :]
            err1[:, i] = err
        w[:, stop:] -= err1 @ hinv[start:stop, stop:]
    if act_order:
        q = q[:, torch.argsort(order)]
    qp = qp0
    if chosen:  # the groups' scales as GPTQ chose them
        n = qp0.scale.shape[1]

        def table(field: str):
            if getattr(qp0, field) is None:
                return None
            return torch.stack([getattr(chosen[g], field).reshape(-1) for g in range(n)], dim=1)

        qp = replace(
            qp0,
            scale=table("scale"),
            zero_point=table("zero_point"),
            minimum=table("minimum"),
        )
    codes = quantize(q, qp)  # q lies on the grid: these codes give it back exactly
    return QuantizedTensor(codes, qp, str(original.dtype).removeprefix("torch."))


@dataclass(frozen=True)
class GPTQ:
    """GPTQ's settings for ``quantize_model(..., algorithm=GPTQ(...))``: the damping (a
    fraction of the Hessian's mean diagonal), the block of columns whose updates to the rest
    are applied at once, and whether columns go in order of decreasing H_ii."""

    damp: float = 0.01
    block: int = 128
    act_order: bool = False
    weighted_ranges: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.damp <= 1:
            raise NumfmtError(f"damp is a fraction of the mean diagonal, 0 to 1, not {self.damp}")
        if self.block < 1:
            raise NumfmtError(f"block is at least one column, not {self.block}")

    def __str__(self) -> str:
        return (
            "gptq"
            + ("/act-order" if self.act_order else "")
            + ("/weighted-ranges" if self.weighted_ranges else "")
        )
