"""An independent, deliberately plain reference for rounding into a float format.

It shares no code with numfmt's encoder: instead of bit arithmetic it finds the two grid
points around x with exact Fractions (floor(x / spacing) * spacing), applies the rounding rule
to them, and then applies IEEE 754's overflow rules as the standard words them. Codes are
recovered from values by a dictionary of every decoded code (formats of 16 bits or fewer, whose
decoding is itself checked against ml_dtypes), or by assembling the fields of a representable
value (wider formats).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from numfmt.formats.types import FloatFormat, Specials

NAN = "nan"


def _floor_log2(x: Fraction) -> int:
    e = x.numerator.bit_length() - x.denominator.bit_length()
    while Fraction(2) ** e > x:
        e -= 1
    while Fraction(2) ** (e + 1) <= x:
        e += 1
    return e


def grid_neighbours(x: Fraction, fmt: FloatFormat) -> tuple[Fraction, Fraction, Fraction]:
    """For x > 0: (lower, upper, spacing) on the format's grid, with the exponent unbounded
    above (so upper may exceed the largest finite value)."""
    e = _floor_log2(x)
    emin = fmt.emin
    if fmt.has_subnormals:
        spacing = Fraction(2) ** (max(e, emin) - fmt.mantissa_bits)
    else:
        spacing = Fraction(2) ** (e - fmt.mantissa_bits)
    k = math.floor(x / spacing)
    return k * spacing, (k + 1) * spacing, spacing


def round_magnitude(x: Fraction, fmt: FloatFormat, mode: str, negative: bool) -> Fraction:
    """Round x > 0 (the magnitude of a value whose sign is given) on the unbounded grid."""
    lower, upper, spacing = grid_neighbours(x, fmt)
    if lower == x:
        return x
    # directions in terms of magnitude
    if mode == "toward-zero":
        return lower
    if mode == "odd":  # the neighbour that is an odd multiple of the spacing
        return lower if (lower / spacing) % 2 == 1 else upper
    if mode == "up":
        return lower if negative else upper
    if mode == "down":
        return upper if negative else lower
    mid = (lower + upper) / 2
    if x < mid:
        return lower
    if x > mid:
        return upper
    if mode == "nearest-away":
        return upper
    if mode == "nearest-zero":
        return lower
    # ties to even: the neighbour that is an even multiple of the spacing
    return lower if (lower / spacing) % 2 == 0 else upper


def reference_value(value, fmt: FloatFormat, mode: str, overflow: str):
    """The value numfmt must produce, as a Fraction (signed), 'inf'/'-inf', NAN, 'error',
    or ('-0') for negative zero. value: a float or a Fraction."""
    if isinstance(value, float) and math.isnan(value):
        return NAN if fmt.has_nan else "error"
    negative = math.copysign(1.0, value) < 0 if isinstance(value, float) else value < 0
    sign = -1 if negative else 1
    if not fmt.signed and (negative or value == 0):
        return {"saturate": fmt.min_value, "error": "error"}.get(overflow, NAN)
    if isinstance(value, float) and math.isinf(value):
        return _beyond(fmt, overflow, negative, toward_zero=False, infinite=True)
    x = abs(Fraction(value))
    if x == 0:
        return "-0" if negative and fmt.has_negative_zero else Fraction(0)
    r = round_magnitude(x, fmt, mode, negative)
    if not fmt.signed and r < fmt.min_value:
        r = fmt.min_value  # no zero, no subnormals: the smallest value is as low as it goes
    if r > fmt.max_value:
        toward_zero = (
            mode in ("toward-zero", "odd")
            or (mode == "up" and negative)
            or (mode == "down" and not negative)
        )
        return _beyond(fmt, overflow, negative, toward_zero, infinite=False)
    if r == 0:
        return "-0" if negative and fmt.has_negative_zero else Fraction(0)
    return sign * r


def _beyond(fmt: FloatFormat, overflow: str, negative: bool, toward_zero: bool, infinite: bool):
    """IEEE 754 7.4 overflow, and the OCP conventions for formats without infinity."""
    maxv = -fmt.max_value if negative else fmt.max_value
    if overflow == "saturate":
        return maxv
    if overflow == "error":
        return ("-inf" if negative else "inf") if infinite and fmt.has_inf else "error"
    if fmt.has_inf:
        return maxv if toward_zero else ("-inf" if negative else "inf")
    if fmt.specials is Specials.FINITE:
        return maxv  # OCP MX: FP6 and FP4 saturate
    return maxv if toward_zero else NAN


def value_to_code(v, fmt: FloatFormat, table: dict | None) -> int | str:
    """The code of a representable reference value (or 'error')."""
    if isinstance(v, str) and v == "error":
        return "error"
    if v == NAN:
        return NAN
    if table is not None:
        key = (
            {"-0": ("-0",), "inf": ("inf",), "-inf": ("-inf",)}.get(v)
            if isinstance(v, str)
            else None
        )
        return table[key if key else Fraction(v)]
    return assemble_code(v, fmt)


def assemble_code(v, fmt: FloatFormat) -> int:
    """Fields of a representable value, put together (for formats wider than 16 bits)."""
    sign = fmt.sign_mask
    if v == "-0":
        return sign
    if v in ("inf", "-inf"):
        return fmt.inf_code | (sign if v == "-inf" else 0)
    v = Fraction(v)
    s = sign if v < 0 else 0
    x = abs(v)
    if x == 0:
        return s
    e = _floor_log2(x)
    m = fmt.mantissa_bits
    if e < fmt.emin:
        frac = x / Fraction(2) ** (fmt.emin - m)
        assert frac.denominator == 1
        return s | int(frac)
    frac = (x / Fraction(2) ** e - 1) * 2**m
    assert frac.denominator == 1
    return s | ((e + fmt.bias) << m) | int(frac)


def code_table(fmt: FloatFormat, decoded: np.ndarray) -> dict:
    """value -> code for every code of a small format (decoded by numfmt, itself checked
    against ml_dtypes); -0, inf and -inf get their own keys."""
    table: dict = {}
    for code, val in enumerate(decoded):
        if np.isnan(val):
            continue
        if val == 0:
            key = ("-0",) if np.signbit(val) else Fraction(0)
        elif np.isinf(val):
            key = ("-inf",) if val < 0 else ("inf",)
        else:
            key = Fraction(float(val))
        table.setdefault(key, code)
    return table
