"""Matrix products computed in a format, with the accumulator of real hardware as a parameter.

``matmul(a, b, model="hopper-fp8")`` is what an H100's FP8 tensor core would give for a @ b,
bit for bit (MMA-Sim's model: ``numfmt.arith.hardware``); the parameters a model stands for can
be given one by one, or override a model's:

============== ================================================================================
inputs         the operands rounded (to nearest) into this format first; None: used as given
products       None: exact products (a fused multiply-add); a format: each product rounded
               into it before it is added
accumulator    the format of the running sum (``"fp32"``, ``"e8m13"``, or a ``Context`` for a
               rounding mode other than nearest-even, stochastic included)
order          ``sequential``; ``kahan``; ``pairwise`` (adjacent pairs, level by level);
               ``tile:T`` (tiles of T terms summed from zero, each added to the running sum)
fused          groups of K products and the accumulator aligned to their largest exponent and
               cut to a number of fractional bits (``"32:13"`` or ``Fused``), as tensor cores
               add; the group's sum is rounded into the accumulator
promote_every  every N terms the partial sum goes into a second accumulator (``promote_to``,
               fp32 to nearest) and the first starts again from zero: DeepSeek-V3's fix
scales        block scales of the operands, ``(scale_a, scale_b)``: scale_a (M, K/B), scale_b
               (K/B, N) or (K/B, N/T) for tiles of T columns; powers of two (E8M0, MX) enter the
               products exactly, other scales (fp32, E4M3) multiply each block's partial sum as
               it is promoted (every B terms, or every promote_every where that divides B;
               one scale across K multiplies every promoted partial sum)
output         the result rounded (to nearest) into this format at the end
============== ================================================================================

Every operation is rounded once, from its exact value; the order is numfmt's, so numpy arrays
and torch tensors, one thread or several, give the same bits. ``numfmt.quant.block_operands``
quantizes operands into MX, NVFP4 or DeepSeek's tiles and gives the scales this takes.
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from numfmt.arith import elementwise
from numfmt.arith._plan import kernel_plan, read_only
from numfmt.arith.context import Context
from numfmt.arith.hardware import TERM_ROUNDINGS, Fused, MatmulModel, get_model
from numfmt.errors import NotRepresentableError, NumfmtError
from numfmt.formats import _kernels
from numfmt.formats.encode import as_real_array
from numfmt.formats.rounding import Rounding
from numfmt.formats.types import FloatFormat

ORDERS = ("sequential", "kahan", "pairwise", "tile:T")


@dataclass(frozen=True)
class Plan:
    """What one matmul call computes, every setting resolved."""

    inputs: Context | None
    products: Context | None
    accumulator: Context
    order: str
    tile: int
    fused: Fused | None
    promote_every: int | None
    promote_to: Context
    output: Context | None
    seed: int


_UNSET = object()


def plan(
    *,
    model=None,
    inputs=_UNSET,
    products=_UNSET,
    accumulator=_UNSET,
    output=None,
    order=_UNSET,
    promote_every=_UNSET,
    promote_to=_UNSET,
    fused=_UNSET,
    seed: int = 0,
) -> Plan:
    """The settings of a matmul: a model's, with the ones given here in their place."""
    base = get_model(model) if model is not None else MatmulModel("custom", "", "")

    def pick(value, default):
        return default if value is _UNSET else value

    inp = pick(inputs, base.inputs)
    prod = pick(products, base.products)
    acc = pick(accumulator, base.accumulator)
    if acc is None:
        raise NumfmtError("a matmul needs an accumulator format (fp32, bf16, e8m13 ...)")
    acc_ctx = _context(
        acc, base.rounding if accumulator is _UNSET else "nearest-even", "the accumulator"
    )
    name, tile = _order(pick(order, base.order))
    fu = Fused.parse(pick(fused, base.fused))
    if fu is not None and name != "sequential":
        raise NumfmtError(
            f"a fused group adds its terms at once; order '{name}' is for term-by-term sums"
        )
    every = pick(promote_every, base.promote_every)
    if every is not None:
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise NumfmtError(f"promote_every is a number of terms >= 1, not {every!r}")
        every = int(every)
        if fu is not None and every % fu.size:
            raise NumfmtError(
                f"promote_every={every} is not a multiple of the fused group of {fu.size}: "
                "partial sums are promoted between groups"
            )
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise NumfmtError(f"the seed is a whole number >= 0, not {seed!r}")
    return Plan(
        inputs=None if inp is None else _context(inp, "nearest-even", "inputs", overflow="error"),
        products=None if prod is None else _context(prod, "nearest-even", "products"),
        accumulator=acc_ctx,
        order=name,
        tile=tile,
        fused=fu,
        promote_every=every,
        promote_to=_context(pick(promote_to, base.promote_to), "nearest-even", "promote_to"),
        output=None if output is None else _context(output, "nearest-even", "output"),
        seed=int(seed),
    )


def _context(spec, rounding, role: str, overflow=None) -> Context:
    ctx = spec if isinstance(spec, Context) else Context(spec, rounding=rounding, overflow=overflow)
    if not isinstance(ctx.fmt, FloatFormat):
        raise NumfmtError(f"the {role} of a matmul is a float format; {ctx.fmt.name} is not one")
    return ctx


def _order(order) -> tuple[str, int]:
    text = str(order).strip().lower()
    name, _, t = text.partition(":")
    if name == "tile":
        if not t.isdigit() or int(t) < 1:
            raise NumfmtError(f"'{order}': write the tile as tile:T with T >= 1 terms")
        return "tile", int(t)
    if name not in ("sequential", "kahan", "pairwise") or t:
        raise NumfmtError(f"unknown matmul order '{order}'; choose one of {', '.join(ORDERS)}")
    return name, 0


def matmul(a, b, *, scales=None, **settings):
    """a @ b computed in a format, as the model or the settings say: ``settings`` are
    ``plan``'s (model, inputs, products, accumulator, output, order, promote_every,
    promote_to, fused, seed; the module's table), scales the operands' block scales.

    a is (..., K) or (K,), b is (K, N) or (K,); the result has numpy's matmul shape, as a
    float64 array (a torch tensor on a's device where an operand is one: ``float32`` where
    the result's format fits it).

    Example:
        >>> import numpy as np
        >>> a = np.full((1, 4096), 1.0); b = np.full((4096, 1), 2**-6)
        >>> float(matmul(a, b, model="fp32")[0, 0])  # 4096 x 2^-6, exact in fp32
        64.0
        >>> float(matmul(a, b, model="bf16-accumulate")[0, 0])  # stalls at 2^-6 x 2^8 x 2
        4.0
    """
    return run(a, b, plan(**settings), scales)


def run(a, b, p: Plan, scales=None):
    """matmul with its settings resolved (a ``Plan``)."""
    like = elementwise._tensor_like((a, b))
    x, y, out_shape = _operands(a, b)
    m, k = x.shape
    n = y.shape[0]
    if p.inputs is not None:
        x = _round_inputs(x, p.inputs, "a")
        y = _round_inputs(y, p.inputs, "b")
    if p.fused is not None and k % p.fused.size:
        raise NumfmtError(
            f"K = {k} is not a multiple of the fused group of {p.fused.size} terms: pad the "
            "operands with zeros to a multiple (as a GEMM library does), or choose fused=None"
        )
    sa, sb, every, shifts = _scales(scales, m, n, k, p)
    fmt_in = p.inputs.fmt if p.inputs is not None else None
    ex = ey = None
    if p.fused is not None:
        ex, ey = _exponents(x, fmt_in), _exponents(y, fmt_in)
    if shifts is not None:  # power-of-two scales enter exactly, as exponents
        rx, ry = (np.repeat(s, k // s.shape[1], axis=1) for s in shifts)
        x, y = np.ldexp(x, rx), np.ldexp(y, ry)
        if ex is not None and ey is not None:
            ex, ey = ex + rx, ey + ry
    out = np.zeros((m, n))
    if m and n and k and not _on_device(like, p, x, y, ex, ey, sa, sb, every, out):
        if ex is not None and ey is not None:
            _run_fused(x, y, ex, ey, sa, sb, every, out, p)
        else:
            _run_general(x, y, sa, sb, every, out, p)
    final = p.output or (p.promote_to if every else p.accumulator)
    if p.output is not None:
        out = np.asarray(elementwise.apply("round", (out,), p.output), dtype=np.float64)
    out = out.reshape(out_shape)
    if like is None:
        return out
    return elementwise._give_back(out, like, elementwise._value_dtype(final.fmt, [], like))


def _on_device(like, p: Plan, x, y, ex, ey, sa, sb, every, out) -> bool:
    """Compute out on the device of a torch operand (CUDA; on the CPU where
    ``elementwise.TORCH_ON_CPU`` says so) by ``_mm_torch``'s whole-tensor kernels, the same
    bits as the host's; False where this plan runs on the host (stochastic rounding, pairwise
    sums, an infinity among a fused group's terms)."""
    if not elementwise._on_device(like) or p.order == "pairwise":
        return False
    contexts = (p.accumulator, p.products, p.promote_to)
    if any(c is not None and c.rounding is Rounding.STOCHASTIC for c in contexts):
        return False
    from numfmt.arith import _mm_torch

    try:
        if ex is not None and ey is not None:
            out[:] = _mm_torch.fused(x, y, ex, ey, sa, sb, every, p, like.device)
        else:
            out[:] = _mm_torch.columns(x, y, sa, sb, every, p, like.device)
    except _mm_torch.HostOnly:
        return False
    return True


def _operands(a, b):
    """a as (M, K) rows and b as (N, K) rows (b transposed), both float64 and finite; and the
    shape of the result."""
    x, y = as_real_array(a), as_real_array(b)
    if x.ndim == 0 or y.ndim == 0:
        raise NumfmtError("matmul multiplies vectors and matrices, not single numbers")
    if y.ndim > 2:
        raise NumfmtError(f"b is a vector or a matrix (K, N), not of shape {y.shape}")
    if x.shape[-1] != y.shape[0]:
        raise NumfmtError(
            f"shapes {x.shape} and {y.shape} do not multiply: a's last dimension ({x.shape[-1]}) "
            f"is not b's first ({y.shape[0]})"
        )
    for name, v in (("a", x), ("b", y)):
        if v.dtype.kind not in "fiub":
            raise NumfmtError(f"{name} holds {v.dtype}, not real numbers")
    x, y = x.astype(np.float64, copy=False), y.astype(np.float64, copy=False)
    for name, v in (("a", x), ("b", y)):
        if not np.isfinite(v).all():
            raise NumfmtError(f"{name} holds NaN or infinity; matmul takes finite operands")
    lead = x.shape[:-1]
    shape = lead + (y.shape[1:] if y.ndim == 2 else ())
    rows = x.reshape(-1, x.shape[-1])
    cols = y.reshape(y.shape[0], -1).T
    return np.ascontiguousarray(rows), np.ascontiguousarray(cols), shape


def _round_inputs(v: np.ndarray, ctx: Context, name: str) -> np.ndarray:
    try:
        return np.asarray(elementwise.apply("round", (v,), ctx), dtype=np.float64)
    except NotRepresentableError:
        fmt = ctx.fmt
        raise NumfmtError(
            f"{name} holds values beyond {fmt.name}'s largest ({float(fmt.max_value):g}): scale "
            "the operands first (block scales: numfmt.quant.block_operands), or pass inputs as "
            "a Context with overflow='saturate'"
        ) from None


def _scales(scales, m, n, k, p: Plan):
    """(scale_a per row and block, scale_b per column and block, the promotion interval,
    (x, y, x's exponent shift, y's) where power-of-two scales fold into the operands)."""
    every = p.promote_every
    if scales is None:
        nb = max(-(-k // every), 1) if every else 1  # a last block may be shorter
        return np.ones((m, nb)), np.ones((n, nb)), every, None
    try:
        sa, sb = scales
    except (TypeError, ValueError):
        raise NumfmtError("scales is a pair (scale_a, scale_b)") from None
    sa = np.asarray(as_real_array(sa), dtype=np.float64)
    sb = np.asarray(as_real_array(sb), dtype=np.float64)
    if sa.ndim != 2 or sb.ndim != 2 or sa.shape[1] != sb.shape[0] or sa.shape[1] < 1:
        raise NumfmtError(
            f"scale_a is (M, K/B) and scale_b (K/B, N) with the same number of blocks; got "
            f"{sa.shape} and {sb.shape}"
        )
    nb = sa.shape[1]
    if k % nb:
        raise NumfmtError(f"K = {k} does not split into {nb} blocks of equal size")
    block = k // nb
    if m % sa.shape[0] or n % sb.shape[1]:
        raise NumfmtError(
            f"scale_a's {sa.shape[0]} rows must divide M = {m} and scale_b's {sb.shape[1]} "
            f"columns N = {n}"
        )
    for name, s in (("scale_a", sa), ("scale_b", sb)):
        if not (np.isfinite(s).all() and (s > 0).all()):
            raise NumfmtError(f"{name} holds a scale that is not a finite positive number")
    sa = np.repeat(sa, m // sa.shape[0], axis=0)
    sb = np.repeat(sb, n // sb.shape[1], axis=1).T.copy()  # (N, blocks)
    if all((np.frexp(s)[0] == 0.5).all() for s in (sa, sb)):  # powers of two: exact exponents
        shifts = (np.log2(sa).astype(np.int32), np.log2(sb).astype(np.int32))
        ones = max(-(-k // every), 1) if every else 1
        return np.ones((m, ones)), np.ones((n, ones)), every, shifts
    if every is None:  # each block's partial sum promoted, times its scales
        every = block
    elif nb == 1:  # one scale across K: it multiplies every promoted partial sum
        reps = -(-k // every)
        sa, sb = np.repeat(sa, reps, axis=1), np.repeat(sb, reps, axis=1)
    elif block % every:
        raise NumfmtError(
            f"scales that are not powers of two multiply each block's partial sum as it is "
            f"promoted: promote_every ({every}) must divide the block of {block}"
        )
    else:
        sa, sb = np.repeat(sa, block // every, axis=1), np.repeat(sb, block // every, axis=1)
    if p.fused is not None and every % p.fused.size:
        raise NumfmtError(
            f"a scale block of {every} is not a multiple of the fused group of {p.fused.size}"
        )
    return sa, sb, every, None


def _threads(m: int, work: int) -> list[tuple[int, int]]:
    n = max(1, min(os.cpu_count() or 1, 8, m, work // 2_000_000 or 1))
    bounds = np.linspace(0, m, n + 1).astype(int)
    return [(int(lo), int(hi)) for lo, hi in itertools.pairwise(bounds) if hi > lo]


def _kernel_args(ctx: Context):
    kp = kernel_plan(ctx.fmt, ctx.rounding, ctx.overflow)  # type: ignore[arg-type]
    return (kp.plan, kp.fast, kp.slot_values, bool(ctx.ftz))


def _exponents(v: np.ndarray, fmt) -> np.ndarray:
    """Each value's exponent as an aligner reads it: its format's smallest for a subnormal
    (float64's where the operands were used as given), -126 for a zero (MMA-Sim's reading)."""
    _, e = np.frexp(v)
    e = np.maximum(e - 1, fmt.emin if isinstance(fmt, FloatFormat) else -1022).astype(np.int32)
    e[v == 0] = -126
    return e


def _need_kernel() -> None:
    if not _kernels.available():
        raise NumfmtError("matmul in a format needs numba (a dependency of numfmt)")


def _spread(kernel, m, work, *args):
    """kernel(*args, lo, hi) over row ranges, in threads; the refusals summed."""
    ranges = _threads(m, work)
    if len(ranges) == 1:
        return kernel(*args, *ranges[0])
    with ThreadPoolExecutor(len(ranges)) as pool:
        return sum(int(v) for v in pool.map(lambda r: kernel(*args, *r), ranges))


def _run_fused(x, y, ex, ey, sa, sb, every, out, p: Plan):
    _need_kernel()
    from numfmt.arith import _mm_jit

    fu = p.fused
    assert fu is not None
    # half the memory traffic where it loses nothing: values float32 holds exactly (the
    # kernel multiplies them in float64, exactly), exponents in int16
    if _fits_float32(x, y):
        x, y = x.astype(np.float32), y.astype(np.float32)
    small = max(np.abs(ex).max(initial=0), np.abs(ey).max(initial=0)) < 2**14
    if small:
        ex, ey = ex.astype(np.int16), ey.astype(np.int16)
    refused = _spread(
        _mm_jit.fused,
        x.shape[0],
        x.size * y.shape[0],
        read_only(x),
        read_only(np.ascontiguousarray(y.T)),
        read_only(ex),
        read_only(np.ascontiguousarray(ey.T)),
        read_only(sa),
        read_only(sb),
        out,
        fu.size,
        fu.bits,
        TERM_ROUNDINGS[fu.rounding],
        _float_format(p.accumulator).emin,
        every or 0,
        _kernel_args(p.accumulator),
        _kernel_args(p.promote_to),
        p.seed,
    )
    _check_refused(refused, p)


def _float_format(ctx: Context) -> FloatFormat:
    assert isinstance(ctx.fmt, FloatFormat)
    return ctx.fmt


def _check_refused(refused, p: Plan):
    if refused:
        raise NotRepresentableError(
            f"a partial sum left the range of {p.accumulator.fmt.name}, and overflow "
            f"'{p.accumulator.overflow.value}' refuses it"
        )


def _run_general(x, y, sa, sb, every, out, p: Plan):
    _need_kernel()
    from numfmt.arith import _mm_jit

    exact = p.products is None
    if exact and p.order == "pairwise" and not _fits_float32(x, y):
        raise NumfmtError(
            "pairwise sums add exact products, which float64 holds only for operands of "
            "24 significant bits or fewer: round the operands (inputs='fp32' or narrower) or "
            "the products (products=...)"
        )
    codes = {"sequential": 0, "kahan": 1, "tile": 2, "pairwise": 3}
    prod = _kernel_args(p.products if p.products is not None else p.accumulator)
    kind: bool | int = exact  # pairwise: whether products are exact; columns: how formed
    if p.order == "pairwise":  # a buffer of one output's terms, summed level by level
        kernel, other = _mm_jit.general, y
    else:  # a block of output columns at once
        kernel, other = _mm_jit.columns, np.ascontiguousarray(y.T)
        if not exact:
            kind = _mm_jit.ROUNDED
        elif _fits_float32(x, y):  # float64 holds each product: a multiply, then one rounding
            kind = _mm_jit.IN_FLOAT64
        else:
            kind = _mm_jit.EXACT
    refused = _spread(
        kernel,
        x.shape[0],
        x.size * y.shape[0],
        read_only(x),
        read_only(other),
        read_only(sa),
        read_only(sb),
        out,
        codes[p.order],
        max(p.tile, 1),
        every or 0,
        prod,
        kind,
        _kernel_args(p.accumulator),
        _kernel_args(p.promote_to),
        p.seed,
    )
    _check_refused(refused, p)


def _fits_float32(*arrays) -> bool:
    return all(bool((v.astype(np.float32).astype(np.float64) == v).all()) for v in arrays)
