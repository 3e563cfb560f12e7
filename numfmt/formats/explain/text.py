"""How explained numbers and codes are written: hex, grouped bits, layouts, exact decimals."""

from __future__ import annotations

from fractions import Fraction

from numfmt.formats.types import AnyFormat, FixedFormat, FloatFormat
from numfmt.formats.value import ExactValue, exact_decimal, scientific, to_float


def hex_code(code: int, fmt: AnyFormat) -> str:
    """A code in hex, zero-padded to the format's width."""
    return f"0x{code:0{(fmt.bits + 3) // 4}X}"


def group_bits(bits: str, size: int = 4) -> str:
    """'11111011' -> '1111_1011', grouped from the right."""
    head = len(bits) % size
    groups = ([bits[:head]] if head else []) + [
        bits[i : i + size] for i in range(head, len(bits), size)
    ]
    return "_".join(groups)


def layout(fmt: AnyFormat) -> str:
    """The fields of a format, e.g. ``1 + 8 + 7`` (sign, exponent, mantissa)."""
    if isinstance(fmt, FloatFormat):
        sign = "1 + " if fmt.signed else ""
        return f"{sign}{fmt.exponent_bits} + {fmt.mantissa_bits}"
    if isinstance(fmt, FixedFormat):
        return f"1 + {fmt.int_bits} + {fmt.frac_bits}"
    return f"{fmt.bits} ({'two' + chr(39) + 's complement' if fmt.signed else 'unsigned'})"


def exact_text(x: Fraction) -> str:
    """x as an exact decimal (a fraction if it does not terminate)."""
    text = exact_decimal(x)
    return text if text is not None else str(x)


def short_text(x: Fraction, digits: int = 17) -> str:
    """x exactly when that takes at most 24 significant digits, else ~ and 17 digits."""
    text = exact_text(x)
    if len(text.replace("-", "").replace(".", "").strip("0")) <= 24:
        return text
    return "~" + scientific(x, digits)


def pow2_text(x: Fraction) -> str:
    """A power of two as 2^k, anything else exactly."""
    k = x.numerator.bit_length() - 1 if x.denominator == 1 else -(x.denominator.bit_length() - 1)
    return f"2^{k}" if Fraction(2) ** k == x else exact_text(x)


def max_text(fmt: FloatFormat) -> str:
    """The largest value as (2 - 2^-m) x 2^emax when its mantissa is all ones, else exactly."""
    ones = (1 << fmt.mantissa_bits) - 1
    if fmt.mantissa_bits and fmt.max_magnitude_code & ones == ones:
        return f"(2 - 2^-{fmt.mantissa_bits}) x 2^{fmt.emax}"
    return pow2_text(fmt.max_value)


def fraction_text(v: ExactValue | None) -> str | None:
    if v is None or not v.is_finite:
        return None
    f = v.fraction
    return str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"


def opt_float(x: Fraction | None) -> float | None:
    return None if x is None else to_float(x)


def number(x: int | Fraction) -> int | float:
    return x if isinstance(x, int) else (int(x) if x.denominator == 1 else float(x))
