"""What a value becomes in a format, field by field: ``show``, ``show_code``, ``compare``."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from typing import cast

import numpy as np

from numfmt.errors import NotRepresentableError, NumfmtError
from numfmt.formats.decode import check_code, classify, decode_exact
from numfmt.formats.encode import default_overflow, encode_exact
from numfmt.formats.explain.results import (
    CompareResult,
    Field,
    Neighbour,
    PolicyOutcome,
    ShowResult,
)
from numfmt.formats.explain.text import exact_text, group_bits, short_text
from numfmt.formats.registry import get_format
from numfmt.formats.rounding import Overflow, Rounding
from numfmt.formats.types import AnyFormat, FixedFormat, FloatFormat, IntFormat, Specials
from numfmt.formats.value import ExactValue

DEFAULT_COMPARE = (
    "float32",
    "float16",
    "bfloat16",
    "float8_e4m3fn",
    "float8_e5m2",
    "float4_e2m1fn",
)


def show(
    value: object,
    fmt: str | AnyFormat,
    rounding: str | Rounding = Rounding.NEAREST_EVEN,
    overflow: str | Overflow | None = None,
    *,
    seed: int = 0,
) -> ShowResult:
    """Explain what a value becomes in a format.

    The value is read exactly (``"3.14"`` is 157/50) and rounded once.

    Args:
        value: a number, or a string in any form ``parse_value`` accepts.
        fmt: a format or its name.
        rounding: the rounding mode.
        overflow: the overflow policy (None: the format's default).
        seed: the seed for stochastic rounding.

    Returns:
        A ShowResult. When the policy refuses the value (``overflow="error"``, NaN into FP4),
        ``code`` is None, ``refusal`` says why and ``policies`` shows the alternatives.

    Examples:
        >>> r = show("3.14", "bf16")
        >>> r.hex, r.bits_grouped, str(r.stored)
        ('0x4049', '0_10000000_1001001', '3.140625')
    """
    fmt = get_format(fmt)
    rounding = Rounding.parse(rounding)
    overflow = default_overflow(fmt) if overflow is None else Overflow.parse(overflow)
    exact = ExactValue.of(value)
    text = value if isinstance(value, str) else str(exact)
    code, refusal = _try_encode(exact, fmt, rounding, overflow, seed)
    outcomes = _policy_outcomes(exact, fmt, rounding, seed)
    policies = outcomes if len({(o.code, o.error is None) for o in outcomes}) > 1 else ()
    if code is None:
        return ShowResult(
            format=fmt,
            input=text,
            exact_input=exact,
            rounding=rounding,
            overflow=overflow,
            code=None,
            stored=None,
            cls="refused",
            event=_refused_event(exact, fmt),
            policies=policies,
            refusal=refusal,
        )
    base = show_code(code, fmt)
    assert base.stored is not None  # show_code decodes the code
    return replace(
        base,
        input=text,
        exact_input=exact,
        rounding=rounding,
        overflow=overflow,
        event=_event(exact, base.stored, fmt, overflow, policies),
        policies=policies,
        steps=_twos_complement_steps(exact, fmt) if not policies else (),
    )


def show_code(code: int, fmt: str | AnyFormat) -> ShowResult:
    """Explain a code: its fields, formula, value, class, ULP and neighbours.

    Examples:
        >>> str(show_code(0x7E, "fp8_e4m3").stored)
        '448'
    """
    fmt = get_format(fmt)
    check_code(int(code), fmt)
    code = int(code)
    stored = decode_exact(code, fmt)
    fields, formula = _fields(code, fmt, stored)
    return ShowResult(
        format=fmt,
        input=None,
        exact_input=None,
        rounding=Rounding.NEAREST_EVEN,
        overflow=default_overflow(fmt),
        code=code,
        stored=stored,
        cls=classify(code, fmt),
        event="decoded",
        fields=tuple(fields),
        formula=formula,
        ulp=_ulp(code, fmt, stored),
        below=_neighbour(code, fmt, -1),
        above=_neighbour(code, fmt, +1),
    )


def compare(
    value: object,
    formats: list[str | AnyFormat] | tuple[str | AnyFormat, ...] | None = None,
    rounding: str | Rounding = Rounding.NEAREST_EVEN,
    overflow: str | Overflow | None = None,
) -> CompareResult:
    """One value in several formats (default: fp32, fp16, bf16, fp8 e4m3/e5m2, fp4).

    ``overflow`` applies to the formats it suits (float policies to floats, ``wrap`` to
    integers); the others keep their default.

    Examples:
        >>> [str(r.stored) for r in compare("3.14", ["bf16", "fp8_e4m3"]).rows]
        ['3.140625', '3.25']
    """
    fmts = [get_format(f) for f in (formats or DEFAULT_COMPARE)]
    if not fmts:
        raise NumfmtError("compare needs at least one format")
    chosen = None if overflow is None else Overflow.parse(overflow)
    rows = [show(value, f, rounding, chosen if _applies(chosen, f) else None) for f in fmts]
    text = value if isinstance(value, str) else str(ExactValue.of(value))
    return CompareResult(text, tuple(rows))


def _applies(policy: Overflow | None, fmt: AnyFormat) -> bool:
    """Whether an overflow policy suits a format (ieee: floats; wrap: integers)."""
    if policy is Overflow.IEEE:
        return isinstance(fmt, FloatFormat)
    if policy is Overflow.WRAP:
        return not isinstance(fmt, FloatFormat)
    return policy is not None


def _try_encode(exact, fmt, rounding, overflow, seed) -> tuple[int | None, str | None]:
    # numpy.random loads only for stochastic rounding (the scalar commands stay quick)
    rng = np.random.default_rng(seed) if rounding is Rounding.STOCHASTIC else None
    try:
        return encode_exact(exact, fmt, rounding, overflow, rng=rng), None
    except NotRepresentableError as exc:
        return None, str(exc)


def _policy_outcomes(exact, fmt, rounding, seed) -> tuple[PolicyOutcome, ...]:
    """Each overflow policy's result for a value (used when they disagree)."""
    if isinstance(fmt, FloatFormat):
        policies = (Overflow.IEEE, Overflow.SATURATE, Overflow.ERROR)
    else:
        policies = (Overflow.WRAP, Overflow.SATURATE, Overflow.ERROR)
    outcomes = []
    for policy in policies:
        code, error = _try_encode(exact, fmt, rounding, policy, seed)
        stored = None if code is None else decode_exact(code, fmt)
        outcomes.append(PolicyOutcome(policy, code, stored, error))
    return tuple(outcomes)


def _refused_event(exact: ExactValue, fmt: AnyFormat) -> str:
    if exact.is_nan:
        return f"NaN: {fmt.name} has no NaN"
    if not fmt.signed and (exact.negative or exact.is_zero):
        return f"out of domain: {fmt.name} holds positive values only"
    return "overflow: refused"


def _event(exact: ExactValue, stored: ExactValue, fmt, overflow: Overflow, policies) -> str:
    """One phrase for what happened to the value on its way in."""
    if exact.is_nan:
        return "NaN"
    if exact.is_inf:
        if stored.is_inf:
            return "infinity"
        return "infinity becomes NaN" if stored.is_nan else "infinity saturates to the maximum"
    if stored.is_nan:
        if not fmt.signed and (exact.negative or exact.is_zero):
            return "out of domain -> NaN"
        return "overflow -> NaN"
    if stored.is_inf:
        return "overflow -> inf"
    if policies and stored.fraction != exact.fraction:
        return "overflow -> wrapped" if overflow is Overflow.WRAP else "overflow -> saturated"
    if stored.fraction == exact.fraction:
        return "exact"
    if stored.is_zero and isinstance(fmt, FloatFormat):
        return "underflow -> 0"
    return "rounded up" if stored.fraction > exact.fraction else "rounded down"


def _twos_complement_steps(exact: ExactValue, fmt: AnyFormat) -> tuple[tuple[str, str], ...]:
    """How a negative integer's code comes about: magnitude, invert, add one."""
    if not isinstance(fmt, IntFormat | FixedFormat) or not exact.is_finite or not exact.negative:
        return ()
    width = fmt.bits
    scale = 2**fmt.frac_bits if isinstance(fmt, FixedFormat) else 1
    n = round(exact.magnitude * scale)
    if n == 0 or n > 1 << (width - 1):
        return ()
    mask = (1 << width) - 1
    magnitude = format(n, f"0{width}b")
    inverted = format(~n & mask, f"0{width}b")
    result = format((~n + 1) & mask, f"0{width}b")
    label = f"{n}" if scale == 1 else f"{n} (= |x| * 2^{cast(FixedFormat, fmt).frac_bits})"
    return (
        (label, group_bits(magnitude)),
        ("invert", group_bits(inverted)),
        ("add one", group_bits(result)),
    )


def _fields(code: int, fmt: AnyFormat, stored: ExactValue) -> tuple[list[Field], str]:
    bits = format(code, f"0{fmt.bits}b")
    if isinstance(fmt, FloatFormat):
        return _float_fields(code, bits, fmt, stored)
    return _integer_fields(code, bits, fmt, stored)


def _float_fields(code, bits, fmt: FloatFormat, stored) -> tuple[list[Field], str]:
    e, m = fmt.exponent_bits, fmt.mantissa_bits
    fields = []
    pos = fmt.bits - 1
    negative = bool(code & fmt.sign_mask)
    if fmt.signed:
        fields.append(Field("sign", bits[0], pos, pos, int(negative), "-" if negative else "+"))
        pos -= 1
    offset = int(fmt.signed)
    biased = int(bits[offset : offset + e], 2)
    frac = int(bits[offset + e :] or "0", 2)
    cls = classify(code, fmt)
    subnormal = cls in ("subnormal", "zero") and fmt.has_subnormals
    special = cls in ("nan", "inf")
    if special and fmt.specials is Specials.IEEE:
        exp_text = "all ones: inf or NaN"
    elif special:
        exp_text = "part of the NaN code"
    elif subnormal:
        exp_text = f"0: subnormal, 1 - bias {fmt.bias} = {fmt.emin}"
    else:
        exp_text = f"{biased} - bias {fmt.bias} = {biased - fmt.bias}"
    fields.append(Field("exponent", bits[offset : offset + e], pos, pos - e + 1, biased, exp_text))
    pos -= e
    lead = 0 if subnormal else 1
    significand = lead + Fraction(frac, 1 << m)
    if m:
        mant_text = f"{lead} + {frac}/2^{m} = {short_text(significand)}"
        if special:
            mant_text = "0: inf" if cls == "inf" else "NaN"
        fields.append(Field("mantissa", bits[offset + e :], pos, 0, frac, mant_text))
    if special:
        formula = "NaN" if cls == "nan" else ("-inf" if negative else "inf")
    else:
        exponent = fmt.emin if subnormal else biased - fmt.bias
        sign_part = f"(-1)^{int(negative)} x " if fmt.signed else ""
        formula = (
            f"{sign_part}2^{exponent} x {short_text(significand)} = {short_text(stored.fraction)}"
        )
    return fields, formula


def _integer_fields(code, bits, fmt, stored) -> tuple[list[Field], str]:
    integer = fmt.integer if isinstance(fmt, FixedFormat) else fmt
    width = integer.width
    n = integer.value_of(code)
    if not integer.signed:
        fields = [Field("value", bits, width - 1, 0, code, f"{code}")]
        return fields, f"{code}"
    weight = -(1 << (width - 1))
    top = weight if bits[0] == "1" else 0
    rest = code & ((1 << (width - 1)) - 1)
    sign_text = f"weight {weight}" if top else f"+ (weight {weight} when set)"
    fields = [Field("sign", bits[0], width - 1, width - 1, int(bits[0]), sign_text)]
    if isinstance(fmt, FixedFormat):
        int_part, frac_part = bits[1 : 1 + fmt.int_bits], bits[1 + fmt.int_bits :]
        if int_part:
            fields.append(
                Field(
                    "integer",
                    int_part,
                    width - 2,
                    fmt.frac_bits,
                    int(int_part, 2),
                    f"+{int(int_part, 2)}",
                )
            )
        if frac_part:
            n = int(frac_part, 2)
            meaning = f"+{n}/2^{fmt.frac_bits}"
            fields.append(Field("fraction", frac_part, fmt.frac_bits - 1, 0, n, meaning))
        formula = f"({top} + {rest}) x 2^-{fmt.frac_bits} = {exact_text(stored.fraction)}"
        return fields, formula
    if width > 1:
        fields.append(Field("value", bits[1:], width - 2, 0, rest, f"+{rest}"))
    return fields, f"{top} + {rest} = {n}"


def _neighbour(code: int, fmt: AnyFormat, direction: int) -> Neighbour | None:
    """The next representable value below (-1) or above (+1) a code's value."""
    if isinstance(fmt, IntFormat | FixedFormat):
        integer = fmt.integer if isinstance(fmt, FixedFormat) else fmt
        n = integer.value_of(code) + direction
        if not integer.min_value <= n <= integer.max_value:
            return None
        nxt = n & ((1 << integer.width) - 1)
        return Neighbour(nxt, decode_exact(nxt, fmt))
    cls = classify(code, fmt)
    if cls == "nan":
        return None
    sign = fmt.sign_mask
    magnitude = code & ~sign
    negative = bool(code & sign)
    if cls == "zero":
        if direction > 0:
            nxt = 1
        elif not fmt.signed:
            return None
        else:
            nxt = sign | 1
    elif negative == (direction < 0):
        if magnitude + 1 > (1 << (fmt.exponent_bits + fmt.mantissa_bits)) - 1:
            return None  # the largest magnitude; one more would carry into the sign bit
        nxt = (magnitude + 1) | (sign if negative else 0)
    else:
        if magnitude == 0:
            return None  # the smallest value of a format without zero
        nxt = (magnitude - 1) | (sign if negative and magnitude > 1 else 0)
    if classify(nxt, fmt) == "nan":
        return None
    return Neighbour(nxt, decode_exact(nxt, fmt))


def _ulp(code: int, fmt: AnyFormat, stored: ExactValue) -> Fraction | None:
    """The gap between the stored value and the next one up in magnitude."""
    if isinstance(fmt, IntFormat):
        return Fraction(1)
    if isinstance(fmt, FixedFormat):
        return fmt.resolution
    if not stored.is_finite:
        return None
    magnitude = code & ~fmt.sign_mask
    biased = magnitude >> fmt.mantissa_bits
    exponent = fmt.emin if biased == 0 and fmt.has_subnormals else biased - fmt.bias
    return Fraction(2) ** (exponent - fmt.mantissa_bits)
