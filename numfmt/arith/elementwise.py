"""Elementwise arithmetic in a format: each result is the exact one, rounded once.

Every operation takes its operands, then ``fmt`` (the format of the result: a name such as
``"bf16"``, or a format), ``flags`` (a ``Flags`` that counts the IEEE exceptions raised) and
the options ``Context`` takes: rounding, overflow, ftz, daz, seed, random_bits.

``add(a, b, "bf16", rounding="down")`` is what a bf16 adder with that rounding would give:
the exact sum of a and b (their binary values, as given), rounded once into bf16. Operands
broadcast as numpy's do; numpy arrays give numpy arrays, torch tensors give torch tensors on
their device (a GPU's computed there: see ``_torch`` and ``_triton``). Results are float32
where the inputs are float32 or narrower and the format's values all fit float32, float64
otherwise; a torch tensor keeps its dtype where the format's values fit it.
"""

from __future__ import annotations

import itertools
import os
import types
from concurrent.futures import ThreadPoolExecutor
from typing import cast

import numpy as np

from numfmt.arith import _core
from numfmt.arith._plan import KernelPlan, kernel_plan, read_only
from numfmt.arith.context import Context
from numfmt.errors import NotRepresentableError, NumfmtError
from numfmt.formats import _core as fc
from numfmt.formats import _kernels
from numfmt.formats.decode import decode
from numfmt.formats.encode import BACKEND, as_real_array, encode
from numfmt.formats.rounding import Overflow, Rounding
from numfmt.formats.types import AnyFormat, FixedFormat, FloatFormat

_OPS = {"add": _core.ADD, "sub": _core.SUB, "mul": _core.MUL, "div": _core.DIV}
_OPS.update(fma=_core.FMA, sqrt=_core.SQRT, round=_core.MUL, neg=_core.MUL, abs=_core.MUL)
_SYMBOLS = {"add": "+", "sub": "-", "mul": "*", "div": "/"}


def apply(name: str, operands: tuple, ctx: Context):
    """The operation ``name`` on operands in a context, counting flags into ``ctx.flags``."""
    like = _tensor_like(operands)
    if _on_device(like) and isinstance(ctx.fmt, FloatFormat):
        return _torch_apply(name, operands, ctx, like)
    arrays, like = _read(operands)
    if name in ("round", "neg", "abs"):  # one rounding of (+-)a: a * (+-1) is exact before it
        a = np.abs(arrays[0]) if name == "abs" else arrays[0]
        arrays = [a, np.array(-1.0 if name == "neg" else 1.0, dtype=a.dtype)]
    try:
        shape = np.broadcast_shapes(*(a.shape for a in arrays))
    except ValueError:
        shapes = " and ".join(str(tuple(a.shape)) for a in arrays)
        raise NumfmtError(f"the operands' shapes {shapes} do not broadcast together") from None
    # an operand of one value stays one value: the kernels use it for every element
    flat = [a.reshape(1) if a.size == 1 else np.broadcast_to(a, shape).reshape(-1) for a in arrays]
    dtype = _value_dtype(ctx.fmt, [a.dtype for a in arrays], like)
    n = int(np.prod(shape, dtype=np.int64))
    if isinstance(ctx.fmt, FloatFormat):
        values = _float_op(_OPS[name], flat, n, ctx, dtype, name)
    else:
        values = _integer_op(_OPS[name], flat, n, ctx, dtype, name)
    return _give_back(values.reshape(shape), like, dtype)


def _tensor_like(operands):
    """The first torch tensor among the operands (the result imitates it), or None."""
    return next((x for x in operands if hasattr(x, "detach") and hasattr(x, "dtype")), None)


def _read(operands):
    """The operands as exact float arrays, and the torch tensor to imitate (or None)."""
    return [_read_one(x) for x in operands], _tensor_like(operands)


def _read_one(x) -> np.ndarray:
    if isinstance(x, str):
        raise NumfmtError(
            f"operands are numbers or arrays, not text ('{x}'); for an expression typed "
            "as text, use numfmt.arith.calc.calc (or numfmt calc on the command line)"
        )
    return as_real_array(x)


# -- tensors on a GPU: computed there, the general path's few elements on the host -------------
#: Also compute CPU tensors the way GPU tensors are: with torch's operations, or with the fused
#: Triton kernel where this is "triton" (in Triton's interpreter). The tests check those paths
#: on a machine without a GPU; numba's kernels are the faster on a CPU.
TORCH_ON_CPU: bool | str = False
#: Run CUDA tensors through the fused Triton kernel where triton is installed (False: torch's
#: operations, one after another; the tests run both).
FUSED_ON_CUDA = True


def _on_device(like) -> bool:
    return like is not None and (like.device.type != "cpu" or bool(TORCH_ON_CPU))


def _fused(device) -> bool:
    """Whether the fused Triton kernel runs the fast path (CUDA, with triton installed)."""
    if device.type == "cpu":
        return TORCH_ON_CPU == "triton"
    if device.type != "cuda" or not FUSED_ON_CUDA:
        return False
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def _torch_apply(name: str, operands: tuple, ctx: Context, like):
    import torch

    device = like.device
    tensors = [_device_float(x, device) for x in operands]
    if name in ("round", "neg", "abs"):  # as apply does: one rounding of (+-)a
        a = tensors[0].abs() if name == "abs" else tensors[0]
        tensors = [a, torch.tensor(-1.0 if name == "neg" else 1.0, dtype=a.dtype, device=device)]
    try:
        shape = torch.broadcast_shapes(*(t.shape for t in tensors))
    except RuntimeError:
        shapes = " and ".join(str(tuple(t.shape)) for t in tensors)
        raise NumfmtError(f"the operands' shapes {shapes} do not broadcast together") from None
    # an operand of one value stays one value, as on the host
    flat = [t.reshape(1) if t.numel() == 1 else t.expand(shape).reshape(-1) for t in tensors]
    flat = [t.contiguous() for t in flat]  # a slice's view would be read as if it were dense
    flat += [torch.zeros(1, dtype=flat[0].dtype, device=device)] * (3 - len(flat))
    op, fmt = _OPS[name], cast(FloatFormat, ctx.fmt)  # apply sends only floats here
    kp = kernel_plan(fmt, ctx.rounding, ctx.overflow)
    dtype = _value_dtype(fmt, [], like)
    out = torch.empty(shape, dtype=dtype, device=device).reshape(-1)
    n = out.numel()
    if n == 0:
        return out.reshape(shape)
    u_host = ctx.uniforms(n) if ctx.rounding is Rounding.STOCHASTIC else None
    u = None if u_host is None else torch.from_numpy(u_host).to(device)
    args = (op, flat, out, kp.plan, kp.fast, u, ctx.daz, float(fmt.min_normal))
    paths: types.ModuleType
    if _fused(device) and kp.fast[0] > 0:
        from numfmt.arith import _triton as paths
    else:
        from numfmt.arith import _torch as paths
    special, inexact = paths.fast(*args)
    counts = [inexact, 0, 0, 0, 0]
    where = special.nonzero().reshape(-1)
    if where.numel():  # the few elements the fast path leaves: the general path, on the host
        positions = where.cpu().numpy()
        host = tuple(_picked(t, where) for t in flat)
        u_few = np.zeros(1) if u_host is None else u_host[positions]
        k, f64, min_normal = positions.size, np.dtype(np.float64), float(fmt.min_normal)
        few, refused, flags = _run(op, host, k, kp, u_few, f64, ctx.ftz, ctx.daz, min_normal)
        counts = [a + b for a, b in zip(counts, flags, strict=True)]
        if refused:  # the flags count as the host path counts them, then the refusal
            ctx.flags.add(counts)
            _raise_refused(op, host, k, ctx, kp.plan, u_few, name, positions)
        out[where] = torch.from_numpy(few).to(device=device, dtype=dtype)
    ctx.flags.add(counts)
    return out.reshape(shape)


def _device_float(x, device):
    """x as a float tensor on device, exactly: a float tensor as it is, anything else as
    float64 (integers by way of the host's checks)."""
    import torch

    if hasattr(x, "detach") and x.is_floating_point():
        return x.detach().to(device)
    return torch.from_numpy(np.asarray(_read_one(x), dtype=np.float64)).to(device)


def _picked(t, where) -> np.ndarray:
    """The elements of a flat operand at where, as float64 on the host (an operand of one
    value stays one value: the kernels use it for every element)."""
    import torch

    picked = t if t.numel() == 1 else t[where]
    return read_only(picked.to(torch.float64).cpu().numpy())


def _fits(fmt: AnyFormat, mantissa: int, emin: int, emax: int) -> bool:
    """Whether every value of fmt is a value of a float with these parameters."""
    if isinstance(fmt, FloatFormat):
        low = fmt.emin - fmt.mantissa_bits
        return fmt.mantissa_bits <= mantissa and fmt.emax <= emax and low >= emin - mantissa
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


def _give_back(values: np.ndarray, like, dtype):
    if like is None:
        return values[()] if values.ndim == 0 else values
    import torch

    # exact: the values are the format's, and dtype holds every one of them (np.array keeps
    # a 0-d result 0-d, where np.ascontiguousarray would make it 1-d)
    return torch.from_numpy(np.array(values, order="C")).to(device=like.device, dtype=dtype)


def _numpy_dtype(dtype):
    """A numpy dtype that holds a (possibly torch) result dtype's values exactly."""
    if isinstance(dtype, np.dtype):
        return dtype
    return np.dtype(np.float32 if dtype.itemsize <= 4 else np.float64)


def _operands(flat, n: int) -> tuple[np.ndarray, ...]:
    """Three contiguous operands of one dtype, each of n values or of one (used for every
    element); a missing third is a zero. The dtype is that of the long operands, unless a
    one-value operand would lose bits in it (then float64)."""
    long = [x.dtype for x in flat if x.size > 1] or [x.dtype for x in flat]
    common = np.result_type(*long)
    short = [x for x in flat if x.size == 1]
    if any(not np.array_equal(x.astype(common), x, equal_nan=True) for x in short):
        common = np.dtype(np.float64)
    padded = (flat + [np.zeros(1, dtype=common)] * 2)[:3]
    return tuple(read_only(np.ascontiguousarray(x, dtype=common)) for x in padded)


#: Arrays at least this long go to the compiled kernel (numba compiles it once, in about 20 s,
#: and caches it on disk); shorter ones, such as the command line's, run the same functions
#: in Python.
KERNEL_MIN_SIZE = 2048


def _use_kernel(n: int) -> bool:
    if BACKEND == "numpy":
        return False
    if BACKEND == "numba":
        return True
    return n >= KERNEL_MIN_SIZE and _kernels.available()


def _run(op, operands, n, kp: KernelPlan, u, dtype, ftz=False, daz=False, min_normal=0.0):
    """(values, refused count, flag counts) of op over flat operands (n results, of dtype)."""
    values = np.empty(n, dtype=dtype)
    if not _use_kernel(n):
        counts = _elementwise_python(op, operands, values, kp, u, ftz, daz, min_normal)
        return values, counts[0], counts[1:]
    from numfmt.arith import _jit

    stochastic = u.size == n
    edges = _chunks(n)

    def part(x, i, j):
        return x[i:j] if x.size == n else x

    with ThreadPoolExecutor(len(edges) - 1) as pool:
        jobs = [
            pool.submit(  # type: ignore[call-arg]  # mypy: *operands takes all the parameters
                _jit.elementwise,
                op,
                *(part(x, i, j) for x in operands),
                values[i:j],
                kp.plan,
                kp.fast,
                kp.slot_values,
                u[i:j] if stochastic else u,
                ftz,
                daz,
                min_normal,
            )
            for i, j in itertools.pairwise(edges)
        ]
        counts = np.sum([job.result() for job in jobs], axis=0)
    return values, int(counts[0]), [int(c) for c in counts[1:]]


def _chunks(n: int) -> list[int]:
    """Edges of contiguous slices, one per core for large arrays (the kernel lets go of the
    GIL, so threads run it in parallel)."""
    threads = min(os.cpu_count() or 1, 8) if n >= 1 << 18 else 1
    return [n * k // threads for k in range(threads + 1)]


def _float_op(op, flat, n, ctx: Context, dtype, name) -> np.ndarray:
    fmt = cast(FloatFormat, ctx.fmt)  # apply sends only floats here
    kp = kernel_plan(fmt, ctx.rounding, ctx.overflow)
    operands = _operands(flat, n)
    u = ctx.uniforms(n) if ctx.rounding is Rounding.STOCHASTIC else np.zeros(1)
    values, refused, flags = _run(
        op, operands, n, kp, u, _numpy_dtype(dtype), ctx.ftz, ctx.daz, float(fmt.min_normal)
    )
    ctx.flags.add(flags)
    if refused:
        _raise_refused(op, operands, n, ctx, kp.plan, u, name)
    return values


def _elementwise_python(op, operands, out, kp: KernelPlan, u, ftz, daz, min_normal):
    """The kernel's loop in Python, for platforms without numba (slow, exact)."""
    totals = [0] * 6
    for i, (x, y, z) in enumerate(_elements(operands, out.size)):
        if daz:
            x, y, z = (_core.daz(v, min_normal) for v in (x, y, z))
        kind, neg, mag, exp, flags = _core.apply(op, x, y, z, kp.plan[fc.P_MODE])
        ui = float(u[i]) if u.size == out.size else 0.0
        code, slot, flags = _core.round_result(kind, neg, mag, exp, flags, ui, kp.plan, ftz)
        out[i] = _core.value_of(code, slot, kp.plan, kp.slot_values)
        totals[0] += _core.refused(slot, kp.plan)
        for k, bit in enumerate((1, 2, 4, 8, 16)):
            totals[k + 1] += bool(flags & bit)
    return totals


def _elements(operands, n):
    """(x, y, z) of each element as Python floats (a one-value operand repeated)."""
    columns = [itertools.repeat(float(x[0]), n) if x.size == 1 else map(float, x) for x in operands]
    return zip(*columns, strict=False)


def _raise_refused(op, operands, n, ctx: Context, plan, u, name, positions=None) -> None:
    """The message for the first result the format cannot hold under its policy (positions:
    where each element of the operands lies in the caller's, where they were picked)."""
    for i, given in enumerate(_elements(operands, n)):
        x, y, z = given
        if ctx.daz:
            fmt = cast(FloatFormat, ctx.fmt)  # floats only come here
            x, y, z = (_core.daz(v, float(fmt.min_normal)) for v in given)
        kind, neg, mag, exp, flags = _core.apply(op, x, y, z, plan[fc.P_MODE])
        ui = float(u[i]) if u.size == n else 0.0
        _, slot, _ = _core.round_result(kind, neg, mag, exp, flags, ui, plan, ctx.ftz)
        if _core.refused(slot, plan):
            break
    else:  # pragma: no cover - the kernel counted a refusal, so the loop finds it
        raise AssertionError("no refused element found")
    index = i if positions is None else int(positions[i])
    where = f" (index {index})" if n > 1 or positions is not None else ""
    raise NotRepresentableError(_refusal(name, given, kind, flags, ctx) + where)


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


# -- integers and fixed point: the exact result rounded to odd in float64, then encoded --------
def _integer_op(op, flat, n, ctx: Context, dtype, name) -> np.ndarray:
    fmt = ctx.fmt
    operands = _operands(flat, n)
    odd = _odd_values(op, operands, n)
    finite = np.isfinite(operands[0]) & np.isfinite(operands[1]) & np.isfinite(operands[2])
    checks = ((np.isnan(odd), "is not a number"), (np.isinf(odd) & finite, "divides by zero"))
    for bad, why in checks:
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            shown = describe(name, [x[i if x.size > 1 else 0] for x in operands])
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


def _odd_values(op, operands, n) -> np.ndarray:
    """The exact results rounded to odd at float64's 53 bits, as float64: what an integer or
    fixed-point format needs to round them once (a result below float64's range keeps only
    its sign and that it is not zero, which is all such a format can use)."""
    kp = kernel_plan(_binary64(), Rounding.ODD, Overflow.IEEE)
    values, _, _ = _run(op, operands, n, kp, np.zeros(1), np.dtype(np.float64))
    return values


def _binary64() -> FloatFormat:
    from numfmt.formats.registry import get_format

    return cast(FloatFormat, get_format("float64"))


# -- the public functions: one context per call -------------------------------------------------
def _call(name, operands, fmt, flags, options):
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise TypeError(f"{name}() got unknown options {unknown}; it takes {', '.join(OPTIONS)}")
    ctx = Context(fmt, **options)
    out = apply(name, operands, ctx)
    if flags is not None:
        flags.add(ctx.flags.counts())
    return out


#: The keyword options every operation takes, as ``Context`` describes them.
OPTIONS = ("rounding", "overflow", "ftz", "daz", "seed", "random_bits")


def add(a, b, fmt, *, flags=None, **options):
    """a + b, rounded once into fmt.

    fmt, flags and the options (rounding, overflow, ftz, daz, seed, random_bits): see the
    module docstring.

    Example:
        >>> float(add(1.0, -2.0**-60, "bf16", rounding="down"))
        0.99609375
    """
    return _call(
        "add",
        (
            a,
            b,
        ),
        fmt,
        flags,
        options,
    )


def sub(a, b, fmt, *, flags=None, **options):
    """a - b, rounded once into fmt.

    fmt, flags and the options (rounding, overflow, ftz, daz, seed, random_bits): see the
    module docstring.

    Example:
        >>> float(sub(1.0, 2.0**-60, "bf16", rounding="toward-zero"))
        0.99609375
    """
    return _call(
        "sub",
        (
            a,
            b,
        ),
        fmt,
        flags,
        options,
    )


def mul(a, b, fmt, *, flags=None, **options):
    """a * b, rounded once into fmt.

    fmt, flags and the options (rounding, overflow, ftz, daz, seed, random_bits): see the
    module docstring.

    Example:
        >>> float(mul(1.5, 1.5, "fp8_e4m3"))
        2.25
    """
    return _call(
        "mul",
        (
            a,
            b,
        ),
        fmt,
        flags,
        options,
    )


def div(a, b, fmt, *, flags=None, **options):
    """a / b, rounded once into fmt.

    fmt, flags and the options (rounding, overflow, ftz, daz, seed, random_bits): see the
    module docstring.

    Example:
        >>> float(div(1.0, 3.0, "fp16", rounding="up"))
        0.33349609375
    """
    return _call(
        "div",
        (
            a,
            b,
        ),
        fmt,
        flags,
        options,
    )


def fma(a, b, c, fmt, *, flags=None, **options):
    """a * b + c with one rounding into fmt (a fused multiply-add).

    fmt, flags and the options (rounding, overflow, ftz, daz, seed, random_bits): see the
    module docstring.

    Example:
        >>> float(fma(1 + 2**-10, 1 - 2**-10, -1.0, "fp16"))
        -9.5367431640625e-07
    """
    return _call(
        "fma",
        (
            a,
            b,
            c,
        ),
        fmt,
        flags,
        options,
    )


def sqrt(a, fmt, *, flags=None, **options):
    """The square root of a, rounded once into fmt.

    fmt, flags and the options (rounding, overflow, ftz, daz, seed, random_bits): see the
    module docstring.

    Example:
        >>> float(sqrt(2.0, "bf16"))
        1.4140625
    """
    return _call("sqrt", (a,), fmt, flags, options)


def round(a, fmt, *, flags=None, **options):
    """a put into fmt: one rounding, with flags.

    fmt, flags and the options (rounding, overflow, ftz, daz, seed, random_bits): see the
    module docstring.

    Example:
        >>> float(round(0.1, "fp16"))
        0.0999755859375
    """
    return _call("round", (a,), fmt, flags, options)


def neg(a, fmt, *, flags=None, **options):
    """-a, rounded into fmt (exact for a value of fmt).

    fmt, flags and the options (rounding, overflow, ftz, daz, seed, random_bits): see the
    module docstring.

    Example:
        >>> float(neg(0.5, "fp16"))
        -0.5
    """
    return _call("neg", (a,), fmt, flags, options)


def abs(a, fmt, *, flags=None, **options):
    """|a|, rounded into fmt (exact for a value of fmt).

    fmt, flags and the options (rounding, overflow, ftz, daz, seed, random_bits): see the
    module docstring.

    Example:
        >>> float(abs(-0.5, "fp16"))
        0.5
    """
    return _call("abs", (a,), fmt, flags, options)
