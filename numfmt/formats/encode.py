"""Values to codes: correctly rounded from float64 (or from an exact rational), vectorised.

Three paths give the same codes:

* ``encode_exact`` - one exact value (``ExactValue``, e.g. the decimal ``3.14`` as 157/50), in
  arbitrary-precision integers: the readable path, used by ``show``;
* the numba kernel (``_kernels.py``) - float arrays, compiled from the same scalar function
  (``_core.encode_one``), used for arrays of 65,536 elements or more when numba is installed;
* the numpy path below - the same arithmetic written over whole arrays; it needs nothing but
  numpy.

Every path rounds once, from the exact input, so there is no double rounding: numfmt agrees
with exact rational arithmetic on every input, where converting float64 through float32 (as
ml_dtypes did up to version 0.6.0) does not.
"""

from __future__ import annotations

import itertools
import math
import os
from fractions import Fraction
from typing import Any, cast

import numpy as np

from numfmt._display import grouped
from numfmt.errors import NotRepresentableError, NumfmtError
from numfmt.formats import _core, _kernels
from numfmt.formats.registry import get_format
from numfmt.formats.rounding import Overflow, Rounding
from numfmt.formats.types import AnyFormat, FixedFormat, FloatFormat, Specials
from numfmt.formats.value import ExactValue, floor_log2

#: Arrays at least this long go to the compiled kernel when numba is installed.
KERNEL_MIN_SIZE = 1 << 16

#: "auto" (kernel for large arrays when numba is there), "numpy" or "numba".
BACKEND = os.environ.get("NUMFMT_BACKEND", "auto")


# -- the plan: what each kind of input becomes, for a format, rounding mode and policy ---------
def default_overflow(fmt: AnyFormat) -> Overflow:
    """IEEE behaviour for floats; an error for integers and fixed point (no silent wrap)."""
    return Overflow.IEEE if isinstance(fmt, FloatFormat) else Overflow.ERROR


def _resolve(fmt, rounding, overflow) -> tuple[AnyFormat, Rounding, Overflow]:
    fmt = get_format(fmt)
    rounding = Rounding.parse(rounding)
    overflow = default_overflow(fmt) if overflow is None else Overflow.parse(overflow)
    if isinstance(fmt, FloatFormat) and overflow is Overflow.WRAP:
        raise NumfmtError(
            f"overflow='wrap' applies to integer formats; {fmt.name} takes ieee, saturate or error"
        )
    if not isinstance(fmt, FloatFormat) and overflow is Overflow.IEEE:
        raise NumfmtError(
            f"overflow='ieee' applies to float formats; {fmt.name} takes wrap, saturate or error"
        )
    return fmt, rounding, overflow


def make_plan(fmt: FloatFormat, rounding: Rounding, overflow: Overflow) -> tuple[int, ...]:
    """The plan tuple of ``_core`` for a float format, rounding mode and overflow policy."""
    sign = fmt.sign_mask
    top = fmt.max_magnitude_code
    nan = fmt.nan_code
    error = None  # marks a slot whose input is refused
    signed_nan = fmt.specials in (Specials.IEEE, Specials.FN)
    # each slot's code, or error
    nans: tuple[int | None, int | None]
    nans = (error, error) if nan is None else (nan, nan | sign if signed_nan else nan)
    # What "IEEE behaviour" gives for a value beyond the range, rounded away from zero.
    beyond: tuple[int | None, int | None]
    if fmt.has_inf:
        inf = fmt.inf_code
        assert inf is not None  # a format with inf has its code
        beyond = (inf, inf | sign)
    elif fmt.specials is Specials.FINITE:
        beyond = (top, top | sign)  # OCP MX: FP6 and FP4 saturate
    else:
        beyond = nans
    saturated = (top, top | sign)

    infs: tuple[int | None, int | None]
    overflows: tuple[int | None, int | None]
    if overflow is Overflow.SATURATE:
        infs, overflows = saturated, saturated
    elif overflow is Overflow.ERROR:
        infs = beyond if fmt.has_inf else (error, error)
        overflows = (error, error)
    else:
        infs = beyond
        # IEEE 754 7.4: rounding toward zero (for the value's sign) gives the largest finite.
        # Round to odd truncates, so it keeps the largest finite value as toward-zero does.
        toward_zero_pos = rounding in (Rounding.TOWARD_ZERO, Rounding.DOWN, Rounding.ODD)
        toward_zero_neg = rounding in (Rounding.TOWARD_ZERO, Rounding.UP, Rounding.ODD)
        overflows = (
            saturated[0] if toward_zero_pos else beyond[0],
            saturated[1] if toward_zero_neg else beyond[1],
        )
    zeros: tuple[int | None, int | None] = (0, sign if fmt.has_negative_zero else 0)
    negative: int | None = error
    if not fmt.signed:  # E8M0-like: no zero, no negatives
        domain = {Overflow.SATURATE: 0, Overflow.ERROR: error}.get(overflow, nans[0])
        zeros, negative, infs = (domain, domain), domain, (infs[0], domain)

    slots = {
        _core.P_NAN_POS: nans[0],
        _core.P_NAN_NEG: nans[1],
        _core.P_INF_POS: infs[0],
        _core.P_INF_NEG: infs[1],
        _core.P_OVF_POS: overflows[0],
        _core.P_OVF_NEG: overflows[1],
        _core.P_ZERO_POS: zeros[0],
        _core.P_ZERO_NEG: zeros[1],
        _core.P_NEG: negative,
    }
    plan = [0] * _core.PLAN_LEN
    plan[_core.P_M] = fmt.mantissa_bits
    plan[_core.P_EMIN] = fmt.emin
    plan[_core.P_SUBN] = int(fmt.has_subnormals)
    plan[_core.P_EMAX] = fmt.emax
    plan[_core.P_MAXMAG] = top
    plan[_core.P_SIGN] = _int64(sign)
    plan[_core.P_MODE] = rounding.code
    for slot, code in slots.items():
        if code is error:
            plan[_core.P_ERRORS] |= 1 << slot
        else:
            plan[slot] = _int64(code)
    return tuple(plan)


def _int64(code: int) -> int:
    """A code as the int64 with the same bits (the kernels work in int64)."""
    return code - (1 << 64) if code >= 1 << 63 else code


_REFUSALS = {
    _core.P_NAN_POS: "nan",
    _core.P_NAN_NEG: "nan",
    _core.P_INF_POS: "overflow",
    _core.P_INF_NEG: "overflow",
    _core.P_OVF_POS: "overflow",
    _core.P_OVF_NEG: "overflow",
    _core.P_ZERO_POS: "domain",
    _core.P_ZERO_NEG: "domain",
    _core.P_NEG: "domain",
}


# -- the exact scalar path ----------------------------------------------------------------------
def encode_exact(
    value: object,
    fmt: str | AnyFormat,
    rounding: str | Rounding = Rounding.NEAREST_EVEN,
    overflow: str | Overflow | None = None,
    *,
    rng: np.random.Generator | None = None,
) -> int:
    """The code of one value, rounded once from its exact value.

    Args:
        value: anything ``ExactValue.of`` reads: a float, an int, a Fraction, a Decimal, or a
            string such as ``"3.14"`` (read as 157/50, not as the float64 nearest to it).
        fmt: a format or its name.
        rounding: a rounding mode (see ``Rounding``).
        overflow: an overflow policy (see ``Overflow``); None for the format's default.
        rng: the random generator for stochastic rounding (default: seeded with 0).

    Returns:
        The code as a Python int.

    Raises:
        NotRepresentableError: the value cannot be encoded under the policy.

    Examples:
        >>> hex(encode_exact("3.14", "bf16"))
        '0x4049'
    """
    fmt, rounding, overflow = _resolve(fmt, rounding, overflow)
    v = ExactValue.of(value)
    u = 0.0
    if rounding is Rounding.STOCHASTIC:
        u = float((rng or np.random.default_rng(0)).random())
    if isinstance(fmt, FloatFormat):
        plan = make_plan(fmt, rounding, overflow)
        kind = {"finite": _core.KIND_FINITE, "inf": _core.KIND_INF, "nan": _core.KIND_NAN}[v.kind]
        sig, e, p = _significand(v.magnitude, fmt.mantissa_bits + 64)
        code, refused = _core.encode_one(kind, v.negative, sig, e, p, u, plan)
        if refused != _core.NO_ERROR:
            raise NotRepresentableError(_error_message(refused, fmt, overflow, str(v)))
        return code & ((1 << fmt.bits) - 1)
    return _encode_integer_exact(v, fmt, rounding, overflow, u)


def _significand(mag: Fraction, bits: int) -> tuple[int, int, int]:
    """(sig, e, p) with mag ~ sig * 2**(e - p), sig in [2**p, 2**(p+1)), last bit sticky."""
    if mag == 0:
        return 0, 0, bits
    num, den = mag.numerator, mag.denominator
    e = floor_log2(mag)
    shift = bits - e
    n, d = (num << shift, den) if shift >= 0 else (num, den << -shift)
    q, r = divmod(n, d)
    # One more bit that is 1 when anything was cut off: enough for every rounding decision.
    return (q << 1) | (r != 0), e, bits + 1


def _round_fraction(x: Fraction, rounding: Rounding, u: float) -> int:
    floor = math.floor(x)
    rem = x - floor
    if rem == 0:
        return floor
    half = Fraction(1, 2)
    up = {
        Rounding.NEAREST_EVEN: rem > half or (rem == half and floor % 2 == 1),
        Rounding.NEAREST_AWAY: rem > half or (rem == half and x > 0),
        Rounding.NEAREST_ZERO: rem > half or (rem == half and x < 0),
        Rounding.TOWARD_ZERO: x < 0,
        Rounding.ODD: floor % 2 == 0,
        Rounding.UP: True,
        Rounding.DOWN: False,
        Rounding.STOCHASTIC: u < rem,
    }[rounding]
    return floor + int(up)


def _encode_integer_exact(v, fmt, rounding, overflow, u) -> int:
    integer = fmt.integer if isinstance(fmt, FixedFormat) else fmt
    if v.is_nan:
        raise NotRepresentableError(f"{fmt.name} has no NaN; cannot encode nan")
    lo, hi = integer.min_value, integer.max_value
    if v.is_inf:
        n = None
    else:
        scaled = v.fraction * (2**fmt.frac_bits if isinstance(fmt, FixedFormat) else 1)
        n = _round_fraction(scaled, rounding, u)
    if n is None or not lo <= n <= hi:
        if overflow is Overflow.SATURATE:
            n = hi if not v.negative else lo
        elif overflow is Overflow.WRAP and n is not None:
            n = n & ((1 << integer.width) - 1)
        else:
            raise NotRepresentableError(_int_overflow_message(fmt, str(v), overflow))
    return n & ((1 << integer.width) - 1)


def _int_overflow_message(fmt, shown: str, overflow: Overflow) -> str:
    lo, hi = fmt.min_value, fmt.max_value
    if isinstance(fmt, FixedFormat):
        lo, hi = float(lo), float(hi)
    if overflow is Overflow.WRAP:
        return f"{shown} cannot wrap into {fmt.name}: it is infinite"
    return (
        f"{shown} does not fit in {fmt.name} ({lo} .. {hi}); "
        "choose overflow 'saturate' to clamp or 'wrap' to keep the low bits"
    )


def _error_message(slot: int, fmt: FloatFormat, overflow: Overflow, shown: str) -> str:
    if _REFUSALS[slot] == "nan":
        return f"{fmt.name} has no NaN; cannot encode {shown}"
    if _REFUSALS[slot] == "domain":
        return (
            f"{fmt.name} holds only positive values, not {shown}; "
            "choose overflow 'ieee' (NaN) or 'saturate' (the smallest value)"
        )
    return (
        f"{shown} is beyond the range of {fmt.name} (max {_short(fmt.max_value)}); "
        "choose overflow 'ieee' or 'saturate' to encode it"
    )


def _short(x) -> str:
    """A value in a few digits, even beyond float64's range (1.875 x 2^1024)."""
    try:
        return f"{float(x):g}"
    except OverflowError:
        e = floor_log2(Fraction(x))
        return f"{float(Fraction(x) / 2**e):g} x 2^{e}"


# -- the array paths ------------------------------------------------------------------------------
def encode(
    values: object,
    fmt: str | AnyFormat,
    rounding: str | Rounding = Rounding.NEAREST_EVEN,
    overflow: str | Overflow | None = None,
    *,
    seed: int | np.random.Generator | None = 0,
) -> np.ndarray:
    """Encode real values into the codes of a format, correctly rounded from float64.

    Args:
        values: a number or an array-like of real numbers (float16/32/64, ml_dtypes floats,
            integers up to 2^53 in magnitude, or a CPU torch tensor).
        fmt: a format or its name (``"bf16"``, ``"fp8_e4m3"``, ``"int8"``, ``"e3m3fn"`` ...).
        rounding: ``nearest-even`` (default), ``nearest-away``, ``nearest-zero``,
            ``toward-zero``, ``up``, ``down``, ``odd`` or ``stochastic``.
        overflow: ``ieee`` (floats' default), ``saturate``, ``error``, or ``wrap`` (integers);
            integers and fixed point default to ``error``.
        seed: seed or generator for stochastic rounding (default 0, so runs repeat).

    Returns:
        Unsigned codes in the smallest uint dtype that holds ``fmt.bits``, with the input's
        shape (a numpy scalar for a scalar input).

    Raises:
        NotRepresentableError: NaN into a format without NaN, or a value the policy refuses.

    Examples:
        >>> int(encode(3.14, "bf16"))
        16457
        >>> encode([1.0, -2.0, 1000.0], "fp8_e4m3").tolist()
        [56, 192, 127]
    """
    fmt, rounding, overflow = _resolve(fmt, rounding, overflow)
    x = as_real_array(values)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    flat = x.reshape(-1)
    if isinstance(fmt, FloatFormat):
        codes = _encode_float_array(flat, fmt, rounding, overflow, rng)
    else:
        codes = _encode_integer_array(flat, fmt, rounding, overflow, rng)
    codes = codes.reshape(x.shape)
    return codes[()] if codes.ndim == 0 else codes


def round_to(
    values: object,
    fmt: str | AnyFormat,
    rounding: str | Rounding = Rounding.NEAREST_EVEN,
    overflow: str | Overflow | None = None,
    *,
    seed: int | np.random.Generator | None = 0,
) -> np.ndarray:
    """The representable values that ``encode`` picks, as float64.

    Examples:
        >>> float(round_to(3.14, "bf16"))
        3.140625
    """
    from numfmt.formats.decode import decode

    codes = encode(values, fmt, rounding, overflow, seed=seed)
    return np.asarray(decode(codes, fmt), dtype=np.float64)[()]


def as_real_array(values: Any) -> np.ndarray:
    """Read values exactly as a float64 array, or a float32 one where they are float32 or
    narrower (every ml_dtypes float of 16 bits or fewer fits float32 exactly)."""
    if hasattr(values, "detach") and hasattr(values, "double"):  # a torch tensor
        values = values.detach().cpu()
        if values.is_complex():
            raise NumfmtError(f"expected real numbers; got a tensor of dtype {values.dtype}")
        if values.is_floating_point():
            narrow = values.element_size() <= 4
            values = (values.float() if narrow else values.double()).numpy()
        else:  # integers and booleans: checked as numpy's are, below
            values = values.numpy()
    try:
        x = np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise NumfmtError(f"cannot read the values as a numeric array: {exc}") from None
    if not x.dtype.isnative:  # a big-endian .npy: the same numbers in this machine's order
        x = x.astype(x.dtype.newbyteorder("="))
    if x.dtype.kind in "biu":
        if x.size and (int(x.max()) > 2**53 or int(x.min()) < -(2**53)):
            raise NumfmtError(
                "integer inputs beyond 2^53 in magnitude cannot be read exactly as float64; "
                "pass them as floats or strings"
            )
        return x.astype(np.float64)
    if x.dtype in (np.float64, np.float32):
        return x
    narrow = x.dtype.itemsize <= 2 and x.dtype.kind in "fV"  # float16 and ml_dtypes floats
    if narrow:
        try:
            return x.astype(np.float32)
        except (TypeError, ValueError):
            pass
    raise NumfmtError(f"expected real numbers; got an array of dtype {x.dtype}")


def _use_kernel(n: int) -> bool:
    if BACKEND == "numpy":
        return False
    if BACKEND == "numba":
        if not _kernels.available():
            raise NumfmtError("NUMFMT_BACKEND=numba but numba is not installed")
        return True
    return n >= KERNEL_MIN_SIZE and _kernels.available()


def _prefix_path(x: np.ndarray, fmt: FloatFormat, rounding, overflow) -> tuple[int, bool] | None:
    """(bits to round away, via float32) when fmt is made of the top bits of x's own format
    (bfloat16 of float32), or of float32's for float64 input; for nearest-even with IEEE
    overflow. None when the general kernel must run."""
    if fmt.specials is not Specials.IEEE:
        return None
    if rounding is not Rounding.NEAREST_EVEN or overflow is not Overflow.IEEE:
        return None
    layout, m = (fmt.exponent_bits, fmt.bias), fmt.mantissa_bits
    if x.dtype == np.float32 and layout == (8, 127) and m < 23:
        return 23 - m, False
    if x.dtype == np.float64 and layout == (11, 1023) and m < 52:
        return 52 - m, False
    if x.dtype == np.float64 and layout == (8, 127) and m <= 21:  # round-to-odd needs 2 spare bits
        return 23 - m, True
    return None


def _encode_float_array(x, fmt: FloatFormat, rounding, overflow, rng) -> np.ndarray:
    plan = make_plan(fmt, rounding, overflow)
    u = rng.random(x.size) if rounding is Rounding.STOCHASTIC else np.zeros(1)
    if _use_kernel(x.size):
        out = np.empty(x.size, dtype=fmt.code_dtype)
        prefix = _prefix_path(x, fmt, rounding, overflow)
        if prefix is not None:
            nan = fmt.nan_code
            assert nan is not None  # an IEEE format (the prefix path's) has a NaN
            _kernels.round_prefix(x, out, prefix[0], nan, nan | fmt.sign_mask, prefix[1])
            return out
        if _kernels.encode_float(x, out, plan, u):
            _raise_first(*_encode_float_numpy(_wide(x), plan, u), x, fmt, overflow)
        return out
    cast = _threaded_cast_path(x, fmt, rounding, overflow, plan, u)
    if cast is not None:
        return cast
    codes, refused = _encode_float_numpy(_wide(x), plan, u)
    _raise_first(codes, refused, x, fmt, overflow)
    return codes.astype(fmt.code_dtype)


#: Arrays at least this long take the cast path when the kernels are not there.
CAST_MIN_SIZE = 1 << 10


#: Arrays at least this long take the cast path in one thread per core (numpy's casts and
#: comparisons let go of the GIL), in contiguous slices, as the kernels run in parallel.
THREAD_MIN_SIZE = 1 << 20


def _threaded_cast_path(x, fmt: FloatFormat, rounding, overflow, plan, u):
    """``_cast_path`` over slices of x, one per core; the first slice that refuses an element
    (an overflow under ``error``) raises, as one pass over the whole array would."""
    threads = min(os.cpu_count() or 1, 8)
    if x.size < THREAD_MIN_SIZE or threads == 1:
        return _cast_path(x, fmt, rounding, overflow, plan, u)
    from concurrent.futures import ThreadPoolExecutor

    edges = np.linspace(0, x.size, threads + 1).astype(int)
    slices = [x[a:b] for a, b in itertools.pairwise(edges)]
    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(_cast_path, p, fmt, rounding, overflow, plan, u) for p in slices]
        parts = [f.result() for f in futures]
    return (
        None if any(p is None for p in parts) else np.concatenate(cast("list[np.ndarray]", parts))
    )


def _cast_path(x, fmt: FloatFormat, rounding, overflow, plan, u) -> np.ndarray | None:
    """The codes through an ml_dtypes cast, exact, or None where this path does not apply.

    Without numba, the fastest exact route: a float32 -> format cast in ml_dtypes rounds once,
    correctly (the tests check it on every named format and both policies here). float64
    input is first rounded to float32, which can only go wrong where that rounding lands
    exactly on a midpoint of the target's grid (the second rounding then meets a false tie),
    or in the target's subnormal range, whose quantum float32's check does not see: those few
    elements are re-encoded one by one by the exact numpy path.
    """
    dtype = fmt.ml_dtype
    if (
        dtype is None
        or x.size < CAST_MIN_SIZE
        or rounding is not Rounding.NEAREST_EVEN
        or overflow not in (Overflow.IEEE, Overflow.SATURATE)
        or fmt.specials is Specials.FNU  # ml_dtypes' E8M0 casts differ (see the tests)
        or fmt.mantissa_bits > 21
        or fmt.bits > 16
    ):
        return None
    if fmt.nan_code is None and np.isnan(x).any():
        return None  # NaN into a format without NaN: the exact path says so
    # numpy casts float64 to float16 in one correct rounding: no float32 step, no false ties
    direct = fmt.ml_dtype == np.float16
    with np.errstate(over="ignore", invalid="ignore"):
        y = x if direct else x.astype(np.float32)
        if overflow is Overflow.SATURATE:
            top = float(fmt.max_value)
            y = np.clip(y, -top, top)
        codes = y.astype(dtype).view(fmt.code_dtype)
    if x.dtype == np.float64 and not direct:
        again = np.flatnonzero(_false_ties(y, fmt))
        if again.size:
            picked = _wide(x[again])
            if overflow is Overflow.SATURATE:
                picked = np.clip(picked, -top, top)
            fixed, refused = _encode_float_numpy(picked, plan, u)
            _raise_first(fixed, refused, x[again], fmt, overflow)
            codes[again] = fixed.astype(fmt.code_dtype)
    return codes


def _false_ties(y: np.ndarray, fmt: FloatFormat) -> np.ndarray:
    """Where a float32 y (rounded from float64) lies exactly on a midpoint of fmt's grid: the
    only places where rounding y again can differ from rounding the float64 once. In the
    normal range a midpoint has the bits 100..0 below fmt's last mantissa bit; in fmt's
    subnormal range (one fixed quantum) it is an odd multiple of half that quantum."""
    spare = 23 - fmt.mantissa_bits
    if spare == 16:  # bfloat16's midpoints: the low half of the float32 is 0x8000
        midpoint = y.view(np.uint16)[0 if np.little_endian else 1 :: 2] == np.uint16(0x8000)
    else:
        bits = y.view(np.uint32)
        midpoint = (bits & np.uint32((1 << spare) - 1)) == np.uint32(1 << (spare - 1))
    if (fmt.exponent_bits, fmt.bias) == (8, 127):
        return midpoint  # float32's own exponent range: its subnormals are fmt's, shifted
    small = np.flatnonzero(np.abs(y) < np.float32(fmt.min_normal))  # few: look at them alone
    if small.size:
        steps = y[small] * np.float32(2.0 ** (fmt.mantissa_bits - fmt.emin))  # exact: 2^k
        midpoint[small[np.abs(steps - np.trunc(steps)) == np.float32(0.5)]] = True
    return midpoint


def _wide(x: np.ndarray) -> np.ndarray:
    """x as float64 (signalling NaNs quieten without a warning, as casts should)."""
    with np.errstate(invalid="ignore"):
        return x.astype(np.float64, copy=False)


def _raise_first(codes, refused: np.ndarray, x: np.ndarray, fmt, overflow) -> None:
    bad = np.flatnonzero(refused != _core.NO_ERROR)
    if bad.size:
        i = int(bad[0])
        shown = (
            f"{x[i]!r}"
            if x.size == 1
            else f"{x[i]!r} (index {i}; {grouped(bad.size)} of {grouped(x.size)})"
        )
        raise NotRepresentableError(_error_message(int(refused[i]), fmt, overflow, shown))


def _encode_float_numpy(
    x: np.ndarray, plan: tuple[int, ...], u: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``_core.encode_one`` over a float64 array in whole-array numpy operations.

    Returns:
        (codes as int64 bit patterns, refusing slot or NO_ERROR per element)
    """
    m, emin, subn = plan[_core.P_M], plan[_core.P_EMIN], plan[_core.P_SUBN]
    emax = plan[_core.P_EMAX]
    mode, sign = plan[_core.P_MODE], np.int64(plan[_core.P_SIGN])
    neg = np.signbit(x)
    a = np.abs(x)
    isnan, isinf = np.isnan(a), np.isinf(a)
    mant, ex = np.frexp(np.where(isnan | isinf, 0.0, a))
    sig = (mant * 2.0**53).astype(np.int64)  # a = sig * 2**(e - 52); 0 for zeros
    e = ex.astype(np.int64) - 1
    is_zero = sig == 0
    es = np.maximum(e, emin) if subn else e
    over = (es > emax) & ~is_zero
    es = np.minimum(es, emax)
    shift = 52 - m + (es - e)
    sc = np.clip(shift, 0, 54)
    q = sig >> sc
    rem = sig - (q << sc)
    if m > 52:
        q = np.where(shift < 0, sig << np.clip(-shift, 0, 62), q)
    inexact = rem != 0
    half = (np.int64(1) << sc) >> 1
    if mode == _core.RNE:
        up = (rem > half) | ((rem == half) & inexact & ((q & 1) == 1))
    elif mode == _core.RNA:
        up = inexact & (rem >= half)
    elif mode == _core.RNZ:
        up = rem > half
    elif mode == _core.RODD:
        up = inexact & ((q & 1) == 0)
    elif mode == _core.RTZ:
        up = np.zeros_like(inexact)
    elif mode == _core.RUP:
        up = inexact & ~neg
    elif mode == _core.RDOWN:
        up = inexact & neg
    else:
        with np.errstate(under="ignore"):
            up = inexact & (u < np.ldexp(rem.astype(np.float64), -shift))
    q = q + up
    if not subn:
        es = np.maximum(es, emin - 1)
    high = (es - emin + subn) << m
    extra = q - (np.int64(1) << m)
    over |= (extra > plan[_core.P_MAXMAG] - high) & ~is_zero
    mag = np.maximum(high + extra, 0)
    if subn:
        is_zero |= mag == 0

    codes = np.where(neg, mag | sign, mag)
    refused = np.full(x.shape, _core.NO_ERROR, dtype=np.int8)
    # Later kinds take precedence, as in encode_one: NaN > inf > sign > overflow > zero.
    kinds = [
        (is_zero, _core.P_ZERO_POS, _core.P_ZERO_NEG),
        (over, _core.P_OVF_POS, _core.P_OVF_NEG),
    ]
    if plan[_core.P_SIGN] == 0:
        kinds.append((neg & (sig != 0), _core.P_NEG, _core.P_NEG))
    kinds += [(isinf, _core.P_INF_POS, _core.P_INF_NEG), (isnan, _core.P_NAN_POS, _core.P_NAN_NEG)]
    for where, pos_slot, neg_slot in kinds:
        if not where.any():
            continue
        for slot, chosen in ((pos_slot, where & ~neg), (neg_slot, where & neg)):
            refuse = (plan[_core.P_ERRORS] >> slot) & 1
            codes = np.where(chosen, 0 if refuse else plan[slot], codes)
            refused = np.where(chosen, slot if refuse else _core.NO_ERROR, refused)
    return codes, refused


def _round_array(x: np.ndarray, rounding: Rounding, rng: np.random.Generator) -> np.ndarray:
    """Round float64 values to integers (as float64) in a rounding mode."""
    if rounding is Rounding.NEAREST_EVEN:
        return np.rint(x)
    if rounding is Rounding.TOWARD_ZERO:
        return np.trunc(x)
    if rounding is Rounding.UP:
        return np.ceil(x)
    if rounding is Rounding.DOWN:
        return np.floor(x)
    # x - trunc(x) is exact (x - floor(x) is not, for negative x near an integer and a half)
    whole = np.trunc(x)
    with np.errstate(invalid="ignore"):  # inf - inf: an infinity stays infinite below
        frac = np.abs(x - whole)
    if rounding is Rounding.NEAREST_AWAY:
        return whole + np.sign(x) * (frac >= 0.5)
    if rounding is Rounding.NEAREST_ZERO:
        return whole + np.sign(x) * (frac > 0.5)
    if rounding is Rounding.ODD:  # truncate, then step away from zero onto the odd neighbour
        return whole + np.sign(x) * ((frac > 0) & (np.fmod(whole, 2) == 0))
    return whole + np.sign(x) * (rng.random(x.shape) < frac)


def _encode_integer_array(x, fmt, rounding, overflow, rng) -> np.ndarray:
    integer = fmt.integer if isinstance(fmt, FixedFormat) else fmt
    x = _wide(x)
    nan = np.isnan(x)
    if nan.any():
        i = int(np.flatnonzero(nan)[0])
        raise NotRepresentableError(
            f"{fmt.name} has no NaN; {grouped(int(nan.sum()))} of {grouped(x.size)} inputs are NaN "
            f"(first at index {i})"
        )
    if isinstance(fmt, FixedFormat):
        with np.errstate(over="ignore"):
            x = np.ldexp(x, fmt.frac_bits)  # exact: a power-of-two scale
    r = _round_array(x, rounding, rng)
    lo, hi = integer.min_value, integer.max_value
    over = (r < float(lo)) | (r >= float(hi + 1))
    if over.any():
        refused = {Overflow.ERROR: over, Overflow.WRAP: np.isinf(r)}.get(overflow)
        if refused is not None and refused.any():
            i = int(np.flatnonzero(refused)[0])
            shown = repr(_input_at(x, i, fmt))
            raise NotRepresentableError(_int_overflow_message(fmt, shown, overflow))
    mask = (1 << integer.width) - 1
    inside = np.where(over, _wrap(r, integer.width) if overflow is Overflow.WRAP else 0.0, r)
    ints = np.where(inside >= 2.0**63, inside - 2.0**64, inside).astype(np.int64)
    codes = ints.astype(np.uint64) & np.uint64(mask)
    if overflow is Overflow.SATURATE and over.any():
        # the bounds as integers: float(2**63 - 1) would round up to 2**63
        ends = np.where(r > 0, np.uint64(hi & mask), np.uint64(lo & mask))
        codes = np.where(over, ends, codes)
    return codes.astype(fmt.code_dtype)


def _input_at(x: np.ndarray, i: int, fmt) -> float:
    """The input value at index i, undoing the fixed-point scale for messages."""
    return float(np.ldexp(x[i], -fmt.frac_bits)) if isinstance(fmt, FixedFormat) else float(x[i])


def _wrap(r: np.ndarray, width: int) -> np.ndarray:
    """r modulo 2**width, in [-2**63, 2**63), computed exactly in float64."""
    wrapped = np.fmod(r, 2.0**width)  # exact, |result| < 2**width
    wrapped = np.where(wrapped >= 2.0**63, wrapped - 2.0**64, wrapped)
    return np.where(wrapped < -(2.0**63), wrapped + 2.0**64, wrapped)


__all__ = ["encode", "encode_exact", "make_plan", "round_to"]
