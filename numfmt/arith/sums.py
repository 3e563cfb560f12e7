"""Sums and dot products in a format, with the order of the additions as a parameter.

Every addition is rounded into the format, and the order is numfmt's, not the BLAS's, so numpy
and torch, one core or many, give the same bits:

=============  =================================================================================
sequential     left to right: ((x0 + x1) + x2) + ...
pairwise       adjacent pairs, level by level: ((x0 + x1) + (x2 + x3)) + ...; an odd term
               waits for the next level
tree           halving strides, as a GPU's shared-memory reduction adds: x[i] + x[i + n/2], ...
blocked:K      left to right within blocks of K terms, then the block sums left to right
kahan          compensated (Kahan): a running correction, every operation of it rounded too
numpy          numpy's own order (numpy/_core/src/umath/loops_utils.h.src, unchanged from 1.26
               to 2.5): +0 plus the pairwise sum, which adds fewer than 8 terms left to right,
               up to 128 in 8 interleaved running sums combined as ((r0+r1)+(r2+r3))+
               ((r4+r5)+(r6+r7)) and the rest left to right, and more as two halves (the first
               a multiple of 8). ``np.sum`` of a contiguous float32 array is
               ``sum(x, "fp32", order="numpy")``, bit for bit
=============  =================================================================================

Beware: ``np.sum`` of a float16 array adds in float32, in that order, and rounds to float16
once at the end (``round(sum(x, "fp32", order="numpy"), "fp16")``); these sums are what they
say they are: ``sum(x, "fp16")`` rounds every addition to fp16.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, cast

import numpy as np

from numfmt._display import Displayable
from numfmt.arith import elementwise
from numfmt.arith._plan import kernel_plan, read_only
from numfmt.arith.context import Context, Flags
from numfmt.errors import NotRepresentableError, NumfmtError
from numfmt.formats import _kernels
from numfmt.formats.encode import as_real_array
from numfmt.formats.rounding import Rounding
from numfmt.formats.types import FloatFormat

ORDERS = ("sequential", "pairwise", "tree", "kahan", "numpy", "blocked:K")


def parse_order(order: str) -> tuple[str, int]:
    """(name, block size) of an order such as ``"blocked:64"``."""
    text = str(order).strip().lower()
    name, _, k = text.partition(":")
    if name == "blocked":
        if not k.isdigit() or int(k) < 1:
            raise NumfmtError(f"'{order}': write the block size as blocked:K with K >= 1")
        return name, int(k)
    if name not in ORDERS or k:
        raise NumfmtError(f"unknown summation order '{order}'; choose one of {', '.join(ORDERS)}")
    return name, 0


def _context(fmt, options) -> Context:
    ctx = fmt if isinstance(fmt, Context) else Context(fmt, **options)
    if not isinstance(ctx.fmt, FloatFormat):
        raise NumfmtError(f"sums run in float formats; {ctx.fmt.name} is not one")
    return ctx


def _rows(x, axis: int | None):
    """x read exactly, with the summed axis last and the others flattened into rows."""
    a = as_real_array(x)
    if a.ndim == 0 or axis is None:
        a, axis = a.reshape(-1), -1
    if not isinstance(axis, (int, np.integer)):
        raise NumfmtError(f"sum one axis at a time (an int, or None for every value), not {axis!r}")
    try:
        a = np.moveaxis(a, axis, -1)
    except np.exceptions.AxisError:
        raise NumfmtError(
            f"axis {axis} is out of range for an array of {a.ndim} dimensions"
        ) from None
    rows = int(np.prod(a.shape[:-1], dtype=np.int64))
    return np.ascontiguousarray(a.reshape(rows, a.shape[-1])), a.shape[:-1]


def _refusal(rows: np.ndarray, ctx: Context) -> str:
    """Why a sum was refused: a NaN or infinity among the terms the format cannot hold, or a
    partial sum beyond its range."""
    fmt = cast(FloatFormat, ctx.fmt)  # _context admits floats only
    if np.isnan(rows).any() and fmt.nan_code is None:
        return f"a term is NaN, and {fmt.name} has no NaN to hold it"
    if np.isinf(rows).any() and not fmt.has_inf:
        return (
            f"a term is infinite, and {fmt.name} has no infinity (overflow '{ctx.overflow.value}')"
        )
    return (
        f"a partial sum left the range of {fmt.name}, and overflow '{ctx.overflow.value}' "
        "refuses it"
    )


def _subnormals(ctx: Context) -> tuple[bool, bool, float]:
    """(ftz, daz, the smallest normal magnitude), as the kernels take them."""
    fmt = cast(FloatFormat, ctx.fmt)  # _context admits floats only
    return ctx.ftz, ctx.daz, float(fmt.min_normal)


def _need_kernel() -> None:
    if not _kernels.available():
        raise NumfmtError(
            "sums in a format need numba (a dependency of numfmt where numba has wheels)"
        )


def _sequential(rows, ctx: Context, kahan=False, running=False, dtype=np.float64):
    _need_kernel()
    from numfmt.arith import _jit

    kp = kernel_plan(cast(FloatFormat, ctx.fmt), ctx.rounding, ctx.overflow)  # _context's float
    draws = rows.size * (4 if kahan else 1)
    u = ctx.uniforms(draws) if ctx.rounding is Rounding.STOCHASTIC else np.zeros(0)
    out = np.empty(rows.shape, dtype=dtype) if running else np.zeros((0, 0), dtype=dtype)
    sums, stalls, refused, counts = _jit.sequential(
        read_only(rows), kp.plan, kp.fast, kp.slot_values, u, *_subnormals(ctx), kahan, out
    )
    ctx.flags.add(counts)
    if refused:
        raise NotRepresentableError(_refusal(rows, ctx))
    return sums, stalls, out


def _numpy_order(rows, ctx: Context):
    _need_kernel()
    from numfmt.arith import _jit

    kp = kernel_plan(cast(FloatFormat, ctx.fmt), ctx.rounding, ctx.overflow)  # _context's float
    # each addition takes a draw: numpy's order makes at most two per term
    stochastic = ctx.rounding is Rounding.STOCHASTIC
    u = ctx.uniforms(2 * rows.size + 1) if stochastic else np.zeros(0)
    # numpy's reduction starts from its identity, +0, and adds the pairwise sum of every term
    pairwise, refused, counts = _jit.numpy_order(
        read_only(rows), kp.plan, kp.fast, kp.slot_values, u, *_subnormals(ctx)
    )
    ctx.flags.add(counts)
    if refused:
        raise NotRepresentableError(_refusal(rows, ctx))
    total = np.asarray(
        elementwise.apply("add", (np.zeros_like(pairwise), pairwise), ctx), dtype=np.float64
    )
    return total


def _levels(rows, ctx: Context, tree: bool):
    """pairwise (adjacent pairs) or tree (halving strides), one level at a time."""
    level = rows
    if level.shape[1] == 0:
        return np.full(level.shape[0], -0.0)
    while level.shape[1] > 1:
        n = level.shape[1]
        half = n // 2
        if tree:
            left, right, carry = level[:, :half], level[:, n - half :], level[:, half : n - half]
            summed = _add(left, right, ctx)
            level = np.concatenate([summed, carry], axis=1) if carry.size else summed
        else:
            pairs = _add(level[:, 0 : 2 * half : 2], level[:, 1 : 2 * half : 2], ctx)
            level = np.concatenate([pairs, level[:, 2 * half :]], axis=1)
    return np.asarray(elementwise.apply("round", (level[:, 0],), ctx), dtype=np.float64)


def _add(a, b, ctx: Context) -> np.ndarray:
    return np.asarray(elementwise.apply("add", (a, b), ctx), dtype=np.float64)


def _blocked(rows, ctx: Context, k: int):
    n = rows.shape[1]
    pad = (-n) % k
    if pad:  # -0 changes no sum
        rows = np.concatenate([rows, np.full((rows.shape[0], pad), -0.0)], axis=1)
    blocks = rows.reshape(-1, k)
    partial, _, _ = _sequential(blocks, ctx)
    sums, _, _ = _sequential(partial.reshape(rows.shape[0], -1), ctx)
    return sums


def _sum_rows(rows, ctx: Context, order: str):
    name, k = parse_order(order)
    if name == "sequential":
        return _sequential(rows, ctx)[0]
    if name == "kahan":
        return _sequential(rows, ctx, kahan=True)[0]
    if name == "numpy":
        return _numpy_order(rows, ctx)
    if name == "blocked":
        return _blocked(rows, ctx, k)
    return _levels(rows, ctx, tree=name == "tree")


def sum(
    x: Any,
    fmt: Any,
    *,
    order: str = "sequential",
    axis: int | None = -1,
    flags: Flags | None = None,
    **options: Any,
) -> Any:
    """The sum of x along an axis, every addition rounded into fmt, in the order given.

    Args:
        x: values (used exactly as given; numpy, torch or anything array-like).
        fmt: the format of every partial sum, or a ``Context``.
        order: sequential, pairwise, tree, kahan, numpy or blocked:K (the module docstring).
        axis: the axis summed (None: every value).
        flags: a ``Flags`` that counts the IEEE exceptions raised.
        **options: rounding, overflow, ftz, daz, seed, random_bits, as ``Context`` takes them.

    Returns:
        The sums as float64 (a numpy scalar for a 1-D x).

    Example:
        >>> float(sum([0.5, 512.0, 512.5], "fp16"))
        1025.0
        >>> float(sum([512.5, 512.0, 0.5], "fp16"))
        1024.0
    """
    ctx = _context(fmt, options)
    rows, shape = _rows(x, axis)
    out = _sum_rows(rows.astype(np.float64), ctx, order).reshape(shape)
    if flags is not None:
        flags.add(ctx.flags.counts())
    return _like(out[()] if out.ndim == 0 else out, ctx, x)


def cumsum(
    x, fmt, *, axis: int | None = -1, kahan: bool = False, flags: Flags | None = None, **options
):
    """The running sums of x along an axis, left to right, each rounded into fmt.

    Example:
        >>> cumsum([1.0, 2.0**-11, 2.0**-11, 1.0], "fp16").tolist()
        [1.0, 1.0, 1.0, 2.0]
    """
    ctx = _context(fmt, options)
    a = as_real_array(x)
    if axis is None:  # every value, in order
        a, axis = a.reshape(-1), -1
    rows, _ = _rows(a, axis)
    # float32 holds the running sums where the input was float32 and the format fits it
    fits = a.dtype == np.float32 and elementwise._fits(ctx.fmt, 23, -126, 127)
    dtype = np.float32 if fits else np.float64
    _, _, running = _sequential(rows, ctx, kahan=kahan, running=True, dtype=dtype)
    if flags is not None:
        flags.add(ctx.flags.counts())
    moved = np.moveaxis(a.reshape(a.shape or (1,)), axis, -1).shape
    return _like(np.moveaxis(running.reshape(moved), -1, axis), ctx, x)


def dot(
    a,
    b,
    fmt,
    *,
    order: str = "sequential",
    axis: int = -1,
    fused: bool = False,
    flags: Flags | None = None,
    **options,
):
    """The dot product of a and b along an axis: each product rounded into fmt, then summed in
    the order given; fused=True adds each product with an fma instead (sequential only), as a
    fused multiply-add unit does.

    Example:
        >>> a, b = [-1.0, 1 + 2**-10], [1.0, 1 - 2**-10]
        >>> float(dot(a, b, "fp16"))  # (1 + 2^-10)(1 - 2^-10) rounds to 1 first
        0.0
        >>> float(dot(a, b, "fp16", fused=True))  # -1 + (1 - 2^-20), rounded once
        -9.5367431640625e-07
    """
    ctx = _context(fmt, options)
    try:
        x, y = np.broadcast_arrays(as_real_array(a), as_real_array(b))
    except ValueError:
        shapes = f"{np.shape(a)} and {np.shape(b)}"
        raise NumfmtError(f"the operands' shapes {shapes} do not broadcast together") from None
    if not fused:
        products = np.asarray(elementwise.apply("mul", (x, y), ctx), dtype=np.float64)
        out = sum(products, ctx, order=order, axis=axis)
    else:
        if parse_order(order)[0] != "sequential":
            raise NumfmtError("a fused dot product adds left to right: order='sequential'")
        xr, shape = _rows(x, axis)
        yr, _ = _rows(y, axis)
        acc = np.full(xr.shape[0], -0.0)
        for i in range(xr.shape[1]):  # one fma per term, vectorised over the rows
            acc = np.asarray(
                elementwise.apply("fma", (xr[:, i], yr[:, i], acc), ctx), dtype=np.float64
            )
        out = acc.reshape(shape)
        out = out[()] if out.ndim == 0 else out
    if flags is not None:
        flags.add(ctx.flags.counts())
    return _like(out, ctx, a, b)


def _like(out, ctx: Context, *inputs):
    """out as a torch tensor on the device (and in the dtype, where it holds the format) of
    the first tensor among the inputs; else as it is."""
    like = elementwise._tensor_like(inputs)
    if like is None:
        return out
    return elementwise._give_back(
        np.asarray(out), like, elementwise._value_dtype(ctx.fmt, [], like)
    )


# -- the exact sum, and a summation explained ----------------------------------------------------
def exact_sum(x) -> Fraction:
    """The exact sum of float values, as a Fraction (vectorised: the significands are added as
    integers, per binary exponent, in float64 without error)."""
    a = as_real_array(x).astype(np.float64).reshape(-1)
    if not np.isfinite(a).all():
        raise NumfmtError("the exact sum of values that include inf or NaN is not a number")
    a = a[a != 0]
    if not a.size:
        return Fraction(0)
    mant, exp = np.frexp(a)
    sig = (mant * 2.0**53).astype(np.int64)  # a = sig * 2**(exp - 53), exactly
    hi, lo = sig >> 26, sig & ((1 << 26) - 1)  # each part < 2**27: sums of 2**26 stay exact
    total = Fraction(0)
    exps, where = np.unique(exp, return_inverse=True)
    for start in range(0, a.size, 1 << 26):
        w = where[start : start + (1 << 26)]
        h = np.bincount(w, weights=hi[start : start + (1 << 26)], minlength=exps.size)
        l_ = np.bincount(w, weights=lo[start : start + (1 << 26)], minlength=exps.size)
        for e, hs, ls in zip(exps.tolist(), h.tolist(), l_.tolist(), strict=True):
            total += (int(hs) * (1 << 26) + int(ls)) * Fraction(2) ** (e - 53)
    return total


@dataclass(eq=False)
class SumResult(Displayable):
    """A summation in a format, in several orders, beside its exact value.

    Attributes:
        values: each order's sum.
        exact: the exact sum (a Fraction).
        stall_index: where the sequential sum stagnated: the first of the last terms (at
            least two, not all zero) none of which changed it; None where the sum kept moving
            to the end, or where no sequential order was asked for. stall_value: the sum
            there.
        running: the sequential (and Kahan) running sums, and under "float64" the running
            sum of the terms in float64 (within float64's rounding of the exact one), for
            figures.
    """

    format: FloatFormat
    rounding: Rounding
    count: int
    values: dict[str, float]
    exact: Fraction
    stall_index: int | None
    stall_value: float | None
    flags: Flags
    running: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    options: dict = field(default_factory=dict)  # Context.settings(): overflow; ftz, daz, seed

    def error(self, order: str) -> float:
        """The order's sum minus the exact sum (float64; an infinite sum's error is infinite,
        a NaN sum's NaN)."""
        v = self.values[order]
        return v - float(self.exact) if not np.isnan(v) else float("nan")

    def relative_error(self, order: str) -> float:
        return builtins.abs(self.error(order) / float(self.exact)) if self.exact else float("nan")

    def to_dict(self) -> dict:
        return {
            "format": self.format.name,
            "rounding": self.rounding.value,
            "count": self.count,
            "exact": float(self.exact),
            "exact_fraction": str(self.exact),
            "orders": {
                order: {
                    "value": v,
                    "error": self.error(order),
                    "relative_error": self.relative_error(order),
                }
                for order, v in self.values.items()
            },
            "stagnation": None
            if self.stall_index is None
            else {"term": self.stall_index + 1, "sum": self.stall_value},
            "flags": self.flags.to_dict(),
            "options": dict(self.options),
        }


def summation(x, fmt, *, orders=("sequential", "pairwise", "kahan"), **options) -> SumResult:
    """A 1-D sum in several orders, with the exact sum, each error and where a sequential sum
    stopped growing.

    Example:
        >>> r = summation([1 / k for k in range(1, 2001)], "fp16")
        >>> r.stall_index + 1, r.values["sequential"]
        (513, 7.0859375)
    """
    ctx = _context(fmt, options)
    rows, _ = _rows(x, -1)
    if rows.shape[0] != 1:
        raise NumfmtError("summation takes a 1-D array of values")
    if rows.size == 0:
        raise NumfmtError("there is nothing to sum: the array is empty")
    rows = rows.astype(np.float64)
    values, running = {}, {}
    stall = -1
    for order in orders:
        name, _ = parse_order(order)
        if name in ("sequential", "kahan"):
            sums, stalls, run = _sequential(rows, ctx, kahan=name == "kahan", running=True)
            values[order], running[order] = float(sums[0]), run[0]
            # a stall is a property of deterministic rounding, and of a finite sum
            settled = ctx.rounding is not Rounding.STOCHASTIC and np.isfinite(sums[0])
            if name == "sequential" and settled:
                stall = int(stalls[0])
        else:
            values[order] = float(_sum_rows(rows, ctx, order)[0])
    if "sequential" not in values:
        stall, seq_run = -1, None
    else:
        seq_run = running["sequential"]
    return SumResult(
        format=cast(FloatFormat, ctx.fmt),  # _context admits floats only
        rounding=ctx.rounding,
        count=rows.size,
        values=values,
        exact=exact_sum(rows),
        stall_index=None if stall < 0 else stall,
        # a stall is found in the sequential run
        stall_value=None if stall < 0 else float(cast(np.ndarray, seq_run)[stall]),
        flags=ctx.flags,
        running={**running, "float64": np.cumsum(rows[0])},
        options=ctx.settings(),
    )
