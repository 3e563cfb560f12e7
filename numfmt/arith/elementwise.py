"""Elementwise arithmetic in a format: each result is the exact one, rounded once.

``add(a, b, "bf16", rounding="down")`` is what a bf16 adder with that rounding would give:
the exact sum of a and b (their binary values, as given), rounded once into bf16. Operands
broadcast as numpy's do; numpy arrays give numpy arrays, torch tensors give torch tensors on
their device (computed on the host for now). Results are float32 where the inputs are
float32 or narrower and the format's values all fit float32, float64 otherwise; a torch
tensor keeps its dtype where the format's values fit it.
"""

from __future__ import annotations

import numpy as np

from numfmt.arith import _core
from numfmt.arith.context import Context
from numfmt.errors import NotRepresentableError, NumfmtError
from numfmt.formats import _core as fc
from numfmt.formats import _kernels
from numfmt.formats.decode import decode, decode_table
from numfmt.formats.encode import as_real_array, encode, make_plan
from numfmt.formats.rounding import Rounding
from numfmt.formats.types import AnyFormat, FixedFormat, FloatFormat

_OPS = {"add": _core.ADD, "sub": _core.SUB, "mul": _core.MUL, "div": _core.DIV}
_OPS.update(fma=_core.FMA, sqrt=_core.SQRT, round=_core.MUL, neg=_core.MUL, abs=_core.MUL)
_SYMBOLS = {"add": "+", "sub": "-", "mul": "*", "div": "/"}


def apply(name: str, operands: tuple, ctx: Context):
    """The operation ``name`` on operands in a context, counting flags into ``ctx.flags``."""
    arrays, like = _read(operands)
    if name in ("round", "neg", "abs"):  # one rounding of (+-)a: a * (+-1) is exact before it
        a = np.abs(arrays[0]) if name == "abs" else arrays[0]
        arrays = [a, np.array(-1.0 if name == "neg" else 1.0, dtype=a.dtype)]
    try:
        shaped = np.broadcast_arrays(*arrays)
    except ValueError:
        shapes = " and ".join(str(tuple(a.shape)) for a in arrays)
        raise NumfmtError(f"the operands' shapes {shapes} do not broadcast together") from None
    shape = shaped[0].shape
    flat = [np.ascontiguousarray(a).reshape(-1) for a in shaped]
    dtype = _value_dtype(ctx.fmt, [a.dtype for a in arrays], like)
    if isinstance(ctx.fmt, FloatFormat):
        values = _float_op(_OPS[name], flat, ctx, dtype, name)
    else:
        values = _integer_op(_OPS[name], flat, ctx, dtype, name)
    return _give_back(values.reshape(shape), like)


def _read(operands):
    """The operands as exact float arrays, and the torch tensor to imitate (or None)."""
    like = next((x for x in operands if hasattr(x, "detach") and hasattr(x, "dtype")), None)
    arrays = []
    for x in operands:
        if isinstance(x, str):
            raise NumfmtError(
                f"operands are numbers or arrays, not text ('{x}'): read it first, e.g. with "
                "numfmt.parse_value, or compute the expression with numfmt.arith.calc"
            )
        arrays.append(as_real_array(x))
    return arrays, like


def _fits(fmt: AnyFormat, mantissa: int, emin: int, emax: int) -> bool:
    """Whether every value of fmt is a value of a float with these parameters."""
    if isinstance(fmt, FloatFormat):
        low = fmt.emin - fmt.mantissa_bits
        return (
            fmt.mantissa_bits <= mantissa and fmt.emax <= emax and low >= emin - mantissa
        )
    width = fmt.integer.width if isinstance(fmt, FixedFormat) else fmt.width
    return width <= mantissa + 1


def _value_dtype(fmt: AnyFormat, dtypes, like):
    if like is not None:
        import torch

        info = {torch.float16: (10, -14, 15), torch.bfloat16: (7, -126, 127)}
        info[torch.float32] = (23, -126, 127)
        if like.dtype in info and _fits(fmt, *info[like.dtype]):
            return like.dtype
        return torch.float32 if _fits(fmt, 23, -126, 127) else torch.float64
    narrow = all(d.itemsize <= 4 for d in dtypes)
    return np.dtype(np.float32 if narrow and _fits(fmt, 23, -126, 127) else np.float64)


def _give_back(values: np.ndarray, like):
    if like is None:
        return values[()] if values.ndim == 0 else values
    import torch

    return torch.from_numpy(np.ascontiguousarray(values)).to(like.device)


def _numpy_dtype(dtype):
    """A numpy dtype that holds a (possibly torch) result dtype's values exactly."""
    return dtype if isinstance(dtype, np.dtype) else np.dtype(np.float32 if dtype.itemsize <= 4 else np.float64)


def _operands(flat) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Up to three flat operands as three contiguous arrays of one dtype and one length."""
    n = flat[0].size
    common = np.result_type(*(x.dtype for x in flat))
    padded = (flat + [np.zeros(n, dtype=common)] * 2)[:3]
    return tuple(np.ascontiguousarray(x, dtype=common) for x in padded)


def _run(op, operands, plan, u, ftz=False, daz=False, min_normal=0.0):
    """(codes as int64, refused count, flag counts) of op over flat operands."""
    a, b, c = operands
    codes = np.empty(a.size, dtype=np.int64)
    args = (op, a, b, c, codes, plan, u, ftz, daz, min_normal)
    if _kernels.available():
        from numfmt.arith import _jit

        counts = _jit.elementwise(*args)
    else:
        counts = _elementwise_python(*args)
    return codes, counts[0], counts[1:]


def _float_op(op, flat, ctx: Context, dtype, name) -> np.ndarray:
    fmt = ctx.fmt
    plan = make_plan(fmt, ctx.rounding, ctx.overflow)
    operands = _operands(flat)
    n = operands[0].size
    u = ctx.uniforms(n) if ctx.rounding is Rounding.STOCHASTIC else np.zeros(1)
    codes, refused, flags = _run(op, operands, plan, u, ctx.ftz, ctx.daz, float(fmt.min_normal))
    ctx.flags.add(flags)
    if refused:
        _raise_refused(op, operands, ctx, plan, u, name)
    return _decode_values(codes, fmt, _numpy_dtype(dtype))


def _elementwise_python(op, a, b, c, out, plan, u, ftz, daz, min_normal):
    """The kernel's loop in Python, for platforms without numba (slow, exact)."""
    totals = [0] * 6
    for i in range(out.size):
        x, y, z = float(a[i]), float(b[i]), float(c[i])
        if daz:
            x, y, z = (_core.daz(v, min_normal) for v in (x, y, z))
        kind, neg, mag, exp, flags = _core.apply(op, x, y, z, plan[fc.P_MODE])
        ui = float(u[i]) if u.size == out.size else 0.0
        code, slot, flags = _core.round_result(kind, neg, mag, exp, flags, ui, plan, ftz)
        out[i] = code
        totals[0] += slot != fc.NO_ERROR
        for k, bit in enumerate((1, 2, 4, 8, 16)):
            totals[k + 1] += bool(flags & bit)
    return totals


def _raise_refused(op, operands, ctx: Context, plan, u, name) -> None:
    """The message for the first result the format cannot hold under its policy."""
    a, b, c = operands
    for i in range(a.size):
        x, y, z = float(a[i]), float(b[i]), float(c[i])
        kind, neg, mag, exp, flags = _core.apply(op, x, y, z, plan[fc.P_MODE])
        ui = float(u[i]) if u.size == a.size else 0.0
        _, slot, _ = _core.round_result(kind, neg, mag, exp, flags, ui, plan, ctx.ftz)
        if slot != fc.NO_ERROR:
            break
    else:  # pragma: no cover - the kernel counted a refusal, so the loop finds it
        raise AssertionError("no refused element found")
    where = f" (index {i})" if a.size > 1 else ""
    raise NotRepresentableError(_refusal(name, (x, y, z), kind, flags, ctx) + where)


def describe(name: str, operands) -> str:
    """How an operation on operands is written: '1 / 0', 'sqrt(-1)', 'fma(1, 2, 3)'."""
    shown = [repr(float(v)) if not float(v).is_integer() else str(int(v)) for v in operands]
    if name in _SYMBOLS:
        return f"{shown[0]} {_SYMBOLS[name]} {shown[1]}"
    arity = {"fma": 3}.get(name, 1)
    return f"{name}({', '.join(shown[:arity])})"


def _refusal(name, operands, kind, flags, ctx: Context) -> str:
    fmt, what = ctx.fmt, describe(name, operands)
    policy = f"overflow '{ctx.overflow.value}'"
    if kind == fc.KIND_NAN:
        why = "is invalid (it has no real value)" if flags & _core.INVALID else "is NaN"
        return f"{what} {why}, and {fmt.name} has no NaN to hold it"
    if flags & _core.DIVIDE_BY_ZERO:
        return (
            f"{what} divides by zero: {fmt.name} has no infinity, and {policy} refuses it "
            "(choose overflow 'saturate' for the largest value)"
        )
    if kind == fc.KIND_INF:
        return f"{what} is infinite, and {policy} refuses infinities in {fmt.name}"
    return (
        f"{what} is beyond the range of {fmt.name} (max {float(fmt.max_value):g}), and "
        f"{policy} refuses it (choose 'ieee' or 'saturate')"
    )


def _decode_values(codes: np.ndarray, fmt: FloatFormat, dtype: np.dtype) -> np.ndarray:
    if fmt.bits <= 16:
        table = decode_table(fmt).astype(dtype)
        codes = codes.astype(np.intp, copy=False)
        if codes.size >= 1 << 16 and _kernels.available():
            return _kernels.take(table, codes)
        return table[codes]
    return decode(codes.astype(fmt.code_dtype), fmt).astype(dtype, copy=False)


# -- integers and fixed point: the exact result rounded to odd in float64, then encoded --------
def _integer_op(op, flat, ctx: Context, dtype, name) -> np.ndarray:
    fmt = ctx.fmt
    operands = _operands(flat)
    odd = _odd_values(op, operands)
    finite = np.all([np.isfinite(x) for x in operands], axis=0)
    for bad, why in ((np.isnan(odd), "is not a number"), (np.isinf(odd) & finite, "divides by zero")):
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            shown = describe(name, [x[i] for x in operands])
            raise NotRepresentableError(f"{shown} {why}, and {fmt.name} cannot hold the result")
    scale = 2.0 ** (fmt.frac_bits if isinstance(fmt, FixedFormat) else 0)
    if ctx.overflow.value == "wrap" and (np.abs(odd) * scale >= 2.0**51).any():
        raise NotRepresentableError(
            f"a result of {name} is too large to wrap exactly into {fmt.name} (numfmt wraps "
            "results below 2^51 units); choose overflow 'saturate' or 'error'"
        )
    rng = ctx._rng if ctx.rounding is Rounding.STOCHASTIC else 0
    codes = encode(odd, fmt, ctx.rounding, ctx.overflow, seed=rng)
    values = np.asarray(decode(codes, fmt), dtype=np.float64).reshape(-1)
    with np.errstate(invalid="ignore"):
        over = (odd > float(fmt.max_value)) | (odd < float(fmt.min_value))
    ctx.flags.add([int((values != odd).sum()), 0, int(over.sum()), 0, 0])
    return values.astype(_numpy_dtype(dtype), copy=False)


def _odd_values(op, operands) -> np.ndarray:
    """The exact results rounded to odd at float64's 53 bits, as float64: what an integer or
    fixed-point format needs to round them once (a result below float64's range keeps only
    its sign and that it is not zero, which is all such a format can use)."""
    plan = make_plan(_binary64(), Rounding.ODD, "ieee")
    codes, _, _ = _run(op, operands, plan, np.zeros(1))
    return codes.view(np.float64)


def _binary64() -> FloatFormat:
    from numfmt.formats.registry import get_format

    return get_format("float64")


# -- the public functions: one context per call -------------------------------------------------
def _context(fmt, rounding, overflow, ftz, daz, seed, random_bits) -> Context:
    return Context(fmt, rounding, overflow, ftz, daz, seed, random_bits)


def _call(name, operands, fmt, rounding, overflow, ftz, daz, seed, random_bits, flags):
    ctx = _context(fmt, rounding, overflow, ftz, daz, seed, random_bits)
    out = apply(name, operands, ctx)
    if flags is not None:
        flags.add([getattr(ctx.flags, n) for n in ctx.flags.NAMES])
    return out


_OPTIONS = """
    Args:
        fmt: the format the result is rounded into (a name such as ``"bf16"`` or a format).
        rounding: any ``numfmt.Rounding`` mode: nearest-even (default), nearest-away,
            nearest-zero, toward-zero, up, down, odd or stochastic.
        overflow: ``ieee`` (floats' default), ``saturate``, ``error``, or ``wrap`` (integers).
        ftz: flush results that round to a subnormal to zero; daz: read subnormal operands as
            zero (both relative to ``fmt``).
        seed, random_bits: stochastic rounding's seed, and the random bits it uses (None: all).
        flags: a ``Flags`` to count the IEEE exceptions into.

    Returns:
        The rounded values: numpy in, numpy out (float32 where the inputs are float32 or
        narrower and ``fmt`` fits float32, else float64); torch in, torch out.

    Raises:
        NumfmtError: an unknown format or mode, operands that do not broadcast, or a result the
            format cannot hold under its policy (NaN into a format without NaN).
"""


def _public(name: str, arity: int, summary: str, example: str):
    def op(*args, rounding=Rounding.NEAREST_EVEN, overflow=None, ftz=False, daz=False,
           seed=0, random_bits=None, flags=None):
        if len(args) != arity + 1:
            raise TypeError(f"{name}() takes {arity} operand(s) and a format")
        *operands, fmt = args
        return _call(name, tuple(operands), fmt, rounding, overflow, ftz, daz, seed,
                     random_bits, flags)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"{summary}\n{_OPTIONS}\n    Example:\n{example}"
    return op


add = _public("add", 2, "a + b, rounded once into fmt.", """        >>> float(add(1.0, -2.0**-60, "bf16", rounding="down"))
        0.99609375
""")
sub = _public("sub", 2, "a - b, rounded once into fmt.", """        >>> float(sub(1.0, 2.0**-60, "bf16", rounding="toward-zero"))
        0.99609375
""")
mul = _public("mul", 2, "a * b, rounded once into fmt.", """        >>> float(mul(1.5, 1.5, "fp8_e4m3"))
        2.25
""")
div = _public("div", 2, "a / b, rounded once into fmt.", """        >>> float(div(1.0, 3.0, "fp16", rounding="up"))
        0.33349609375
""")
fma = _public("fma", 3, "a * b + c with one rounding into fmt (a fused multiply-add).", """        >>> float(fma(1.0 + 2.0**-10, 1.0 - 2.0**-10, -1.0, "fp16"))
        -9.5367431640625e-07
""")
sqrt = _public("sqrt", 1, "The square root of a, rounded once into fmt.", """        >>> float(sqrt(2.0, "bf16"))
        1.4140625
""")
round = _public("round", 1, "a put into fmt: one rounding, with flags.", """        >>> float(round(0.1, "fp16"))
        0.0999755859375
""")
neg = _public("neg", 1, "-a, rounded into fmt (exact for a value of fmt).", """        >>> float(neg(0.5, "fp16"))
        -0.5
""")
abs = _public("abs", 1, "|a|, rounded into fmt (exact for a value of fmt).", """        >>> float(abs(-0.5, "fp16"))
        0.5
""")
