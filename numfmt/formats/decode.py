"""Codes to values: exactly for one code (``decode_exact``), vectorised for arrays (``decode``).

Floats decode to float64, which holds every value of every format of 53 significand bits or
fewer whose range lies inside float64's; wider custom formats (more than 52 mantissa bits, or an
exponent range beyond float64's) are correctly rounded to float64 there, and ``decode_exact``
gives their exact value. Integers decode to numpy integers, fixed point to float64 (exact up to
53 bits).
"""

from __future__ import annotations

import functools
from fractions import Fraction

import numpy as np

from numfmt.errors import NumfmtError
from numfmt.formats import _kernels
from numfmt.formats.registry import get_format
from numfmt.formats.types import AnyFormat, FixedFormat, FloatFormat, IntFormat, Specials
from numfmt.formats.value import ExactValue

#: Formats of this many bits or fewer decode through a table of every code.
TABLE_MAX_BITS = 16


def check_code(code: int, fmt: AnyFormat) -> int:
    """Return code if it is a code of fmt, else raise a NumfmtError that says why."""
    if not 0 <= code < fmt.num_codes:
        raise NumfmtError(
            f"code {_hex(code)} does not fit in the {fmt.bits} bits of {fmt.name} "
            f"(codes 0 .. {_hex(fmt.num_codes - 1)})"
        )
    return code


def _hex(code: int) -> str:
    return f"-0x{-code:X}" if code < 0 else f"0x{code:X}"


def decode_exact(code: int, fmt: str | AnyFormat) -> ExactValue:
    """The exact value of one code.

    Examples:
        >>> str(decode_exact(0x4049, "bf16"))
        '3.140625'
    """
    fmt = get_format(fmt)
    check_code(int(code), fmt)
    code = int(code)
    if isinstance(fmt, IntFormat):
        n = fmt.value_of(code)
        return ExactValue("finite", n < 0, Fraction(abs(n)))
    if isinstance(fmt, FixedFormat):
        n = fmt.integer.value_of(code)
        return ExactValue("finite", n < 0, abs(n) * fmt.resolution)
    cls = classify(code, fmt)
    negative = bool(code & fmt.sign_mask)
    if cls == "nan":
        return ExactValue("nan")
    if cls == "inf":
        return ExactValue("inf", negative)
    return ExactValue("finite", negative, fmt.magnitude_value(code & ~fmt.sign_mask))


def classify(code: int, fmt: str | AnyFormat) -> str:
    """The class of a code: ``zero``, ``subnormal``, ``normal``, ``inf`` or ``nan``.

    Integer and fixed-point codes are ``zero``, ``integer`` or ``fixed``.
    """
    fmt = get_format(fmt)
    code = check_code(int(code), fmt)
    if not isinstance(fmt, FloatFormat):
        return "zero" if code == 0 else ("integer" if isinstance(fmt, IntFormat) else "fixed")
    e, m = fmt.exponent_bits, fmt.mantissa_bits
    magnitude = code & ~fmt.sign_mask
    biased = magnitude >> m
    all_ones = (1 << (e + m)) - 1
    nan = {
        Specials.IEEE: biased == (1 << e) - 1 and magnitude & ((1 << m) - 1) != 0,
        Specials.FN: magnitude == all_ones,
        Specials.FNUZ: code == fmt.sign_mask,
        Specials.FINITE: False,
        Specials.FNU: magnitude == all_ones,
    }[fmt.specials]
    if nan:
        return "nan"
    if fmt.has_inf and biased == (1 << e) - 1:
        return "inf"
    if not fmt.has_subnormals:
        return "normal"
    if magnitude == 0:
        return "zero"
    return "subnormal" if biased == 0 else "normal"


def decode(codes: object, fmt: str | AnyFormat) -> np.ndarray:
    """Decode codes into values, vectorised.

    Args:
        codes: an unsigned integer or an array-like of them.
        fmt: a format or its name.

    Returns:
        float64 values for float and fixed-point formats (NaN and inf where the codes say so),
        numpy integers for integer formats; the input's shape (a scalar for a scalar).

    Raises:
        NumfmtError: a code is negative or wider than the format.

    Examples:
        >>> float(decode(0x4049, "bf16"))
        3.140625
        >>> decode([0x7E, 0x7F], "fp8_e4m3").tolist()
        [448.0, nan]
    """
    fmt = get_format(fmt)
    c = _as_codes(codes, fmt)
    flat = c.reshape(-1)
    if isinstance(fmt, IntFormat):
        out = _decode_int(flat, fmt)
    elif isinstance(fmt, FixedFormat):
        out = np.ldexp(_decode_int(flat, fmt.integer).astype(np.float64), -fmt.frac_bits)
    elif fmt.bits <= TABLE_MAX_BITS:
        table = decode_table(fmt)
        use_kernel = flat.size >= 1 << 16 and _kernels.available()
        out = _kernels.take(table, flat) if use_kernel else table[flat]
    elif fmt.name in ("float32", "float64"):
        with np.errstate(invalid="ignore"):  # signalling NaNs quieten, as they should
            out = flat.view(fmt.name).astype(np.float64)
    else:
        out = _decode_float_numpy(flat, fmt)
    out = out.reshape(c.shape)
    return out[()] if out.ndim == 0 else out


@functools.lru_cache(maxsize=64)
def decode_table(fmt: FloatFormat) -> np.ndarray:
    """The value of every code of a float format of 16 bits or fewer (read-only)."""
    table = _decode_float_numpy(np.arange(fmt.num_codes, dtype=np.uint64), fmt)
    table.setflags(write=False)
    return table


def _as_codes(codes: object, fmt: AnyFormat) -> np.ndarray:
    c = np.asarray(codes)
    if c.dtype == object:
        try:
            c = np.asarray([check_code(int(v), fmt) for v in c.reshape(-1)], dtype=np.uint64)
        except (TypeError, ValueError) as exc:
            raise NumfmtError(f"codes must be non-negative integers: {exc}") from None
    if c.dtype.kind not in "biu":
        raise NumfmtError(f"codes must be non-negative integers, not an array of {c.dtype}")
    if c.size:
        lo, hi = int(c.min()), int(c.max())
        check_code(lo if lo < 0 else hi, fmt)
    return c.astype(fmt.code_dtype, copy=False)


def _decode_int(c: np.ndarray, fmt: IntFormat) -> np.ndarray:
    if not fmt.signed:
        return c.astype(fmt.value_dtype)
    if fmt.width == 64:
        return c.view(np.int64)
    v = c.astype(np.int64)
    v = np.where(v >= 1 << (fmt.width - 1), v - (1 << fmt.width), v)
    return v.astype(fmt.value_dtype)


def _decode_float_numpy(c: np.ndarray, fmt: FloatFormat) -> np.ndarray:
    """Assemble sign * significand * 2**exponent from the fields of every code."""
    c = c.astype(np.uint64)
    e, m = fmt.exponent_bits, fmt.mantissa_bits
    sign = np.uint64(fmt.sign_mask)
    neg = (c & sign) != 0
    magnitude = c & np.uint64((1 << (e + m)) - 1)
    biased = (magnitude >> np.uint64(m)).astype(np.int64)
    frac = magnitude & np.uint64((1 << m) - 1)
    if fmt.has_subnormals:
        sub = biased == 0
        significand = frac + np.where(sub, np.uint64(0), np.uint64(1 << m))
        exponent = np.where(sub, fmt.emin, biased - fmt.bias) - m
    else:
        significand = frac + np.uint64(1 << m)
        exponent = biased - fmt.bias - m
    with np.errstate(over="ignore", under="ignore"):
        value = np.ldexp(significand.astype(np.float64), exponent.astype(np.int32))
    value = np.where(neg, -value, value)
    all_ones = np.uint64((1 << (e + m)) - 1)
    if fmt.specials is Specials.IEEE:
        top = biased == (1 << e) - 1
        value = np.where(top, np.where(frac == 0, np.where(neg, -np.inf, np.inf), np.nan), value)
    elif fmt.specials in (Specials.FN, Specials.FNU):
        value = np.where(magnitude == all_ones, np.nan, value)
    elif fmt.specials is Specials.FNUZ:
        value = np.where(c == sign, np.nan, value)
    return value
