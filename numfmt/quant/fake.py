"""``fake_quantize``: x rounded onto a scheme's grid and back in one pass, with gradients.

What simulation and quantization-aware training call most: dequantize(quantize(x)) in x's
dtype, library and device, without materialising the codes. On a torch tensor that requires
grad it is differentiable with the straight-through estimator: ``ste="clipped"`` (the
default, as in torch.ao) passes the gradient where the value was not clipped and 0 where it
was (``clipped_mask``, the error report's definition of clipping); ``ste="plain"`` passes it
everywhere. The scale stays a tensor, so a learnable-scale method can carry a gradient into it.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from numfmt.errors import NumfmtError
from numfmt.quant import _xp, grid
from numfmt.quant.granularity import Grouping
from numfmt.quant.qparams import (
    QParams,
    _block_params,
    _check_policy,
    _codes,
    _fit,
    _in_place,
    _int_chunks,
    _uniforms,
    _values,
    as_scheme,
    choose_qparams,
)
from numfmt.quant.schemes import QuantScheme

STE_MODES = ("clipped", "plain")


def fake_quantize(
    x: Any,
    scheme: QuantScheme | str | QParams = "int8",
    *,
    ste: str = "clipped",
    nan_policy: str = "error",
    seed: Any = 0,
    method: str | None = None,
    **method_args: Any,
):
    """dequantize(quantize(x)): x rounded onto the scheme's grid, in x's dtype and library,
    on x's device. Differentiable (straight-through) on torch tensors that require grad.

    The values are computed in float64 and rounded once into x's dtype (for float16 and
    bfloat16 that second rounding can move a value off the grid by up to half an ulp of x's
    dtype).

    Args:
        ste: ``clipped`` (gradient 1 inside the grid's range, 0 where the value was
            clipped) or ``plain`` (gradient 1 everywhere).

    Examples:
        >>> fake_quantize(np.array([0.0, 0.3, 1.0]), "int2").tolist()
        [0.0, 0.0, 1.0]
    """
    if ste not in STE_MODES:
        raise NumfmtError(f"ste is 'clipped' or 'plain', not '{ste}'")
    grad = _xp.is_torch(x) and x.requires_grad and _grad_enabled()
    if isinstance(scheme, QParams):
        qp = scheme
    else:
        scheme = as_scheme(scheme, method, **method_args)
        _check_policy(nan_policy)
        fused = _fused_minmax(x, scheme, mask=grad and ste == "clipped")
        if fused is not None:
            values, inside = fused
            return _ste_function().apply(x, values, inside) if grad else values
        qp = choose_qparams(x, scheme, nan_policy=nan_policy)
    finite = not isinstance(scheme, QParams) and nan_policy == "error"  # checked on the way
    if not grad:
        return fake_values(x, qp, seed=seed, finite=finite)
    plain = x.detach()
    inside = ~clipped_mask(plain, qp) if ste == "clipped" else None
    return _ste_function().apply(x, fake_values(plain, qp, seed=seed, finite=finite), inside)


def _fused_minmax(x, scheme: QuantScheme, mask: bool = False):
    """The fastest route for the commonest case (an int grid with float32 scales from each
    group's min and max): ranges, scales and values in one compiled visit of the memory (numba
    on the host, Triton on CUDA), the same values as choose_qparams then fake_values, and with
    ``mask`` the unclipped mask ``clipped_mask`` gives, as (values, inside or None); None
    where it does not apply."""
    if not (isinstance(x, np.ndarray) or _xp.is_torch(x)) or math.prod(x.shape) == 0:
        return None
    if _xp.on_cpu(x):
        if _xp.dtype_name(x.dtype) not in ("float32", "float64"):
            return None
        from numfmt.quant._kernels import fake_quantize_minmax
    else:
        from numfmt.quant._gpu import fake_quantize_minmax
    if _xp.is_torch(x):
        x = x.detach()
    g = Grouping(tuple(x.shape), scheme.granularity)
    parts = []
    for rows in g.blocks(x):
        part = fake_quantize_minmax(rows, scheme, mask)
        if part is None:
            return None
        parts.append(part)
    values = g.assemble([p[0] for p in parts])
    return values, (g.assemble([p[1] for p in parts]) if mask else None)


def _grad_enabled() -> bool:
    import torch

    return torch.is_grad_enabled()


def fake_values(x: Any, qparams: QParams, *, seed: Any = 0, finite: bool = False):
    """The fake-quantized values of x in x's dtype (no gradient); ``finite`` promises that x
    holds no NaN (a pass saved)."""
    a, xp = _xp.read(x)
    qparams = _fit(a, qparams)
    s = qparams.scheme
    g = qparams.grouping
    out_dtype = _output_dtype(x, a, xp)
    work = (
        out_dtype if _xp.on_cpu(a) and _xp.dtype_name(out_dtype) in ("float32", "float64") else None
    )
    blocks = g.blocks(a)
    uniforms = _uniforms(xp, qparams, blocks, seed) if blocks else []
    parts = []
    for rows, p, stored, u in zip(
        blocks, _block_params(qparams), _block_params(qparams, stored=True), uniforms, strict=True
    ):
        fast = None
        if work is not None and u is None and s.scale_rule != "gguf":
            from numfmt.quant import _kernels

            fast = _kernels.fake_quantize_int(rows, p["scale"], p["zero"], s, work)
        if fast is None:
            fast = _fake_block(xp, rows, p, stored, s, out_dtype, u, finite)
        parts.append(fast)
    like = xp.zeros((), dtype=out_dtype, device=_xp.device(a))
    return g.assemble(parts, like=like)


def _fake_block(xp, rows, p, stored, scheme, dtype, u, finite):
    out = _xp.empty(xp, rows.shape, dtype, rows)
    if _in_place(scheme, u):
        for part, params, buf in _int_chunks(xp, rows, p):
            grid.int_rows_into(xp, rows[part], params, scheme, buf, out[part], finite, fake=True)
        return out
    # float grids, codebooks, GGUF (codes from the float32 scale, values from the stored one)
    # and stochastic rounding: codes, then their values
    for part in _xp.row_chunks(rows.shape[0], rows.shape[1], _xp.on_cpu(rows)):
        codes = _codes(xp, rows[part], p, scheme, part, u)
        out[part] = xp.astype(_values(xp, codes, stored, part, scheme), dtype)
    return out


def _output_dtype(x, a, xp):
    """x's own floating dtype (ml_dtypes and torch's half types included), else float64."""
    if _xp.is_torch(x):
        return x.dtype if x.is_floating_point() else xp.float64
    dt = getattr(x, "dtype", None)
    if dt is not None:
        dt = np.dtype(dt)
        if dt.kind == "f" or type(dt).__module__.startswith("ml_dtypes") or dt.kind == "V":
            try:
                np.zeros(1, dt).astype(np.float64)
                return dt
            except (TypeError, ValueError):
                pass
    return a.dtype if a.dtype == np.float64 else np.dtype(np.float64)


def clipped_mask(x, qparams: QParams):
    """A bool array in x's shape: where x lies beyond its group's grid (clipped)."""
    a, xp = _xp.read(x)
    qparams = _fit(a, qparams)
    g = qparams.grouping
    lo, hi = grid.clip_bounds(qparams)
    blocks = [
        (rows < lo_b[:, None]) | (rows > hi_b[:, None])
        for rows, lo_b, hi_b in zip(
            g.blocks(a), g.split_params(lo), g.split_params(hi), strict=True
        )
    ]
    return g.assemble(blocks, like=xp.zeros((), dtype=xp.bool, device=_xp.device(a)))


@functools.cache
def _ste_function():
    """The straight-through estimator (built when torch is used): forward gives the values
    already computed (by a fused kernel, or fake_values), backward passes the gradient where
    ``inside`` (the unclipped mask) holds, or everywhere where it is None (``ste="plain"``)."""
    import torch

    class FakeQuantizeSTE(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, values, inside):
            ctx.save_for_backward(inside)
            return values

        @staticmethod
        def backward(ctx, grad):
            (inside,) = ctx.saved_tensors
            if inside is not None:
                grad = grad * inside.to(grad.dtype)
            return grad, None, None

    return FakeQuantizeSTE
