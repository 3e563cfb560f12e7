"""Explaining numbers: what a value becomes in a format, field by field, and why.

Every function here returns a result object that holds numbers, not text layout:
``to_dict()`` feeds ``--json``, ``__rich__`` draws it in a terminal and ``_repr_html_`` in a
notebook (both through ``numfmt.render``).

==================  ============================================================
``show``            one value in one format: bits, fields, formula, stored value,
                    error, class, ULP, neighbours, and each overflow policy's
                    result when the value does not fit
``show_code``       the same for a code (``numfmt decode``)
``compare``         one value in several formats, a row each
``info``            a format's summary, in the manner of ``numpy.finfo``
``table``           every code of a format of 8 bits or fewer
``formats_list``    every named format, a line each
==================  ============================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

import numpy as np

from numfmt._display import Displayable
from numfmt.errors import NotRepresentableError, NumfmtError
from numfmt.formats.decode import check_code, classify, decode_exact
from numfmt.formats.encode import default_overflow, encode_exact
from numfmt.formats.registry import FAMILIES, aliases_of, get_format, named_formats
from numfmt.formats.rounding import Overflow, Rounding
from numfmt.formats.types import AnyFormat, FixedFormat, FloatFormat, IntFormat, Specials
from numfmt.formats.value import ExactValue, exact_decimal, scientific, to_float

DEFAULT_COMPARE = (
    "float32",
    "float16",
    "bfloat16",
    "float8_e4m3fn",
    "float8_e5m2",
    "float4_e2m1fn",
)

TABLE_MAX_BITS = 8

_SPECIALS_TEXT = {
    Specials.IEEE: "IEEE 754: top exponent for inf (mantissa 0) and NaN; +0 and -0",
    Specials.FN: "finite (fn): no inf; NaN only where all bits but the sign are 1; +0 and -0",
    Specials.FNUZ: "finite, unsigned zero (fnuz): no inf, no -0; NaN is the code 1000...0",
    Specials.FINITE: "finite only: no inf, no NaN; +0 and -0",
    Specials.FNU: "unsigned exponent-only scale (fnu): powers of two, no zero, NaN at all ones",
}


@dataclass(frozen=True)
class Field:
    """One field of a code: its bits, where they sit, and what they mean."""

    name: str
    bits: str
    high: int
    low: int
    value: int
    meaning: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "bits": self.bits,
            "high": self.high,
            "low": self.low,
            "value": self.value,
            "meaning": self.meaning,
        }


@dataclass(frozen=True)
class Neighbour:
    """A representable value next to the stored one."""

    code: int
    value: ExactValue

    def to_dict(self, fmt: AnyFormat) -> dict[str, Any]:
        return {"code": self.code, "hex": hex_code(self.code, fmt), "value": str(self.value)}


@dataclass(frozen=True)
class PolicyOutcome:
    """What one overflow policy makes of a value that does not fit."""

    policy: Overflow
    code: int | None
    stored: ExactValue | None
    error: str | None

    def to_dict(self, fmt: AnyFormat) -> dict[str, Any]:
        return {
            "policy": self.policy.value,
            "code": self.code,
            "hex": None if self.code is None else hex_code(self.code, fmt),
            "stored": None if self.stored is None else str(self.stored),
            "error": self.error,
        }


@dataclass(frozen=True)
class ShowResult(Displayable):
    """A value in a format, explained. Built by :func:`show` and :func:`show_code`."""

    format: AnyFormat
    input: str | None
    exact_input: ExactValue | None
    rounding: Rounding
    overflow: Overflow
    code: int | None
    stored: ExactValue | None
    cls: str
    event: str
    fields: tuple[Field, ...] = ()
    formula: str = ""
    ulp: Fraction | None = None
    below: Neighbour | None = None
    above: Neighbour | None = None
    policies: tuple[PolicyOutcome, ...] = ()
    steps: tuple[tuple[str, str], ...] = ()
    refusal: str | None = None

    # -- numbers derived from the above -----------------------------------------------------
    @property
    def bits(self) -> str | None:
        return None if self.code is None else format(self.code, f"0{self.format.bits}b")

    @property
    def bits_grouped(self) -> str | None:
        """The bits with ``_`` between fields (floats, fixed point) or nibbles (integers)."""
        if self.code is None:
            return None
        if isinstance(self.format, IntFormat):
            return group_bits(self.bits)
        return "_".join(f.bits for f in self.fields)

    @property
    def hex(self) -> str | None:
        return None if self.code is None else hex_code(self.code, self.format)

    @property
    def abs_error(self) -> Fraction | None:
        """|stored - input| exactly, where both are finite."""
        if not self._both_finite():
            return None
        return abs(self.stored.fraction - self.exact_input.fraction)

    @property
    def rel_error(self) -> Fraction | None:
        """abs_error / |input| (0 when both are 0)."""
        err = self.abs_error
        if err is None:
            return None
        if self.exact_input.magnitude == 0:
            return Fraction(0) if err == 0 else None
        return err / self.exact_input.magnitude

    @property
    def ulp_error(self) -> Fraction | None:
        """abs_error in units of the ULP at the stored value."""
        err = self.abs_error
        return None if err is None or not self.ulp else err / self.ulp

    def _both_finite(self) -> bool:
        return (
            self.exact_input is not None
            and self.stored is not None
            and self.exact_input.is_finite
            and self.stored.is_finite
        )

    def to_dict(self) -> dict[str, Any]:
        fmt = self.format
        exact_in = self.exact_input
        return {
            "format": fmt.name,
            "input": self.input,
            "exact_input": None if exact_in is None else str(exact_in),
            "code": self.code,
            "hex": self.hex,
            "bits": self.bits,
            "bits_grouped": self.bits_grouped,
            "stored": None if self.stored is None else str(self.stored),
            "stored_fraction": _fraction_text(self.stored),
            "value": None if self.stored is None else float(self.stored),
            "class": self.cls,
            "event": self.event,
            "abs_error": _opt_float(self.abs_error),
            "rel_error": _opt_float(self.rel_error),
            "ulp_error": _opt_float(self.ulp_error),
            "ulp": _opt_float(self.ulp),
            "rounding": self.rounding.value,
            "overflow": self.overflow.value,
            "fields": [f.to_dict() for f in self.fields],
            "formula": self.formula,
            "neighbours": {
                "below": None if self.below is None else self.below.to_dict(fmt),
                "above": None if self.above is None else self.above.to_dict(fmt),
            },
            "policies": [p.to_dict(fmt) for p in self.policies],
            "twos_complement": [{"step": s, "bits": b} for s, b in self.steps],
            "error": self.refusal,
        }


@dataclass(frozen=True)
class CompareResult(Displayable):
    """One value in several formats, a :class:`ShowResult` per format."""

    input: str
    rows: tuple[ShowResult, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"input": self.input, "rows": [r.to_dict() for r in self.rows]}


@dataclass(frozen=True)
class FormatInfo(Displayable):
    """A format's summary: layout, range, precision and special values."""

    format: AnyFormat
    aliases: tuple[str, ...]
    items: tuple[tuple[str, Any], ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format.name, "aliases": list(self.aliases), **dict(self.items)}


@dataclass(frozen=True)
class CodeTable(Displayable):
    """Every code of a small format with its value and class."""

    format: AnyFormat
    rows: tuple[tuple[int, str, ExactValue, str], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format.name,
            "codes": [
                {"code": c, "hex": hex_code(c, self.format), "bits": b, "value": str(v), "class": k}
                for c, b, v, k in self.rows
            ],
        }


@dataclass(frozen=True)
class FormatList(Displayable):
    """The named formats and the pattern families."""

    formats: tuple[FloatFormat, ...]
    families: tuple[tuple[str, str], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "formats": [
                {
                    "name": f.name,
                    "aliases": aliases_of(f),
                    "bits": f.bits,
                    "layout": layout(f),
                    "max": to_float(f.max_value),
                    "smallest": to_float(f.smallest),
                    "specials": f.specials.value,
                }
                for f in self.formats
            ],
            "families": [{"pattern": p, "meaning": m} for p, m in self.families],
        }


# -- building results ------------------------------------------------------------------------
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

    Example:
        >>> r = show("3.14", "bf16")
        >>> r.hex, r.bits_grouped, str(r.stored)
        ('0x4049', '0_10000000_1001001', '3.140625')
    """
    fmt = get_format(fmt)
    rounding = Rounding.parse(rounding)
    overflow = default_overflow(fmt) if overflow is None else Overflow.parse(overflow)
    exact = ExactValue.of(value)
    text = value if isinstance(value, str) else str(exact)
    rng = np.random.default_rng(seed)
    code, refusal = _try_encode(exact, fmt, rounding, overflow, rng)
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

    Example:
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

    Example:
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


def info(fmt: str | AnyFormat) -> FormatInfo:
    """A format's summary, as ``numpy.finfo`` / ``ml_dtypes.finfo`` give and more.

    Example:
        >>> dict(info("bf16").items)["max"]
        3.3895313892515355e+38
    """
    fmt = get_format(fmt)
    items: list[tuple[str, Any]] = [("kind", fmt.kind), ("bits", fmt.bits), ("layout", layout(fmt))]
    if isinstance(fmt, FloatFormat):
        dt = fmt.ml_dtype
        items += [
            ("exponent_bits", fmt.exponent_bits),
            ("mantissa_bits", fmt.mantissa_bits),
            ("precision", fmt.precision),
            ("bias", fmt.bias),
            ("specials", fmt.specials.value),
            ("specials_meaning", _SPECIALS_TEXT[fmt.specials]),
            ("max", to_float(fmt.max_value)),
            ("max_exact", _max_text(fmt)),
            ("min_normal", to_float(fmt.min_normal)),
            ("smallest", to_float(fmt.smallest)),
            ("smallest_exact", _pow2_text(fmt.smallest)),
            ("epsilon", to_float(fmt.epsilon)),
            ("emin", fmt.emin),
            ("emax", fmt.emax),
            ("decimal_digits", round(fmt.precision * 0.30102999566398120, 2)),
            ("binades", round(fmt.binades, 2)),
            ("normal_binades", round(fmt.normal_binades, 2)),
            ("finite_codes", fmt.num_finite),
            ("has_inf", fmt.has_inf),
            ("has_nan", fmt.has_nan),
            ("has_negative_zero", fmt.has_negative_zero),
            ("inf_code", None if fmt.inf_code is None else hex_code(fmt.inf_code, fmt)),
            ("nan_code", None if fmt.nan_code is None else hex_code(fmt.nan_code, fmt)),
            ("max_code", hex_code(fmt.max_magnitude_code, fmt)),
            ("numpy_dtype", None if dt is None else str(dt)),
        ]
    else:
        items += [
            ("signed", fmt.signed),
            ("min", _number(fmt.min_value)),
            ("max", _number(fmt.max_value)),
            ("resolution", _number(fmt.smallest)),
            ("codes", fmt.num_codes),
        ]
        if isinstance(fmt, FixedFormat):
            items += [("int_bits", fmt.int_bits), ("frac_bits", fmt.frac_bits)]
    return FormatInfo(fmt, tuple(aliases_of(fmt)), tuple(items))


def table(fmt: str | AnyFormat) -> CodeTable:
    """Every code of a format of 8 bits or fewer, with its bits, value and class.

    Raises:
        NumfmtError: the format is wider than 8 bits.
    """
    fmt = get_format(fmt)
    if fmt.bits > TABLE_MAX_BITS:
        raise NumfmtError(
            f"table lists formats of {TABLE_MAX_BITS} bits or fewer; {fmt.name} has "
            f"{fmt.num_codes:,} codes. Use 'numfmt decode CODE --format {fmt.name}' for one."
        )
    rows = []
    for code in range(fmt.num_codes):
        r = show_code(code, fmt)
        rows.append((code, r.bits_grouped, r.stored, r.cls))
    return CodeTable(fmt, tuple(rows))


def formats_list() -> FormatList:
    """Every named format, and the families of names that a pattern spells."""
    return FormatList(tuple(named_formats()), tuple(FAMILIES.items()))


# -- pieces ------------------------------------------------------------------------------------
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


def _applies(policy: Overflow | None, fmt: AnyFormat) -> bool:
    """Whether an overflow policy suits a format (ieee: floats; wrap: integers)."""
    if policy is Overflow.IEEE:
        return isinstance(fmt, FloatFormat)
    if policy is Overflow.WRAP:
        return not isinstance(fmt, FloatFormat)
    return policy is not None


def _try_encode(exact, fmt, rounding, overflow, rng) -> tuple[int | None, str | None]:
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
        code, error = _try_encode(exact, fmt, rounding, policy, np.random.default_rng(seed))
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
    label = f"{n}" if scale == 1 else f"{n} (= |x| * 2^{fmt.frac_bits})"
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
        mant_text = f"{lead} + {frac}/2^{m} = {_short_text(significand)}"
        if special:
            mant_text = "0: inf" if cls == "inf" else "NaN"
        fields.append(Field("mantissa", bits[offset + e :], pos, 0, frac, mant_text))
    if special:
        formula = "NaN" if cls == "nan" else ("-inf" if negative else "inf")
    else:
        exponent = fmt.emin if subnormal else biased - fmt.bias
        sign_part = f"(-1)^{int(negative)} x " if fmt.signed else ""
        formula = (
            f"{sign_part}2^{exponent} x {_short_text(significand)} = {_short_text(stored.fraction)}"
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
        formula = f"({top} + {rest}) x 2^-{fmt.frac_bits} = {_exact_text(stored.fraction)}"
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


def _exact_text(x: Fraction) -> str:
    """x as an exact decimal (a fraction if it does not terminate)."""
    text = exact_decimal(x)
    return text if text is not None else str(x)


def _short_text(x: Fraction, digits: int = 17) -> str:
    """x exactly when that takes at most 24 significant digits, else ~ and 17 digits."""
    text = _exact_text(x)
    if len(text.replace("-", "").replace(".", "").strip("0")) <= 24:
        return text
    return "~" + scientific(x, digits)


def _pow2_text(x: Fraction) -> str:
    """A power of two as 2^k, anything else exactly."""
    k = x.numerator.bit_length() - 1 if x.denominator == 1 else -(x.denominator.bit_length() - 1)
    return f"2^{k}" if Fraction(2) ** k == x else _exact_text(x)


def _max_text(fmt: FloatFormat) -> str:
    """The largest value as (2 - 2^-m) x 2^emax when its mantissa is all ones, else exactly."""
    ones = (1 << fmt.mantissa_bits) - 1
    if fmt.mantissa_bits and fmt.max_magnitude_code & ones == ones:
        return f"(2 - 2^-{fmt.mantissa_bits}) x 2^{fmt.emax}"
    return _pow2_text(fmt.max_value)


def _fraction_text(v: ExactValue | None) -> str | None:
    if v is None or not v.is_finite:
        return None
    f = v.fraction
    return str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"


def _opt_float(x: Fraction | None) -> float | None:
    return None if x is None else to_float(x)


def _number(x: int | Fraction) -> int | float:
    return x if isinstance(x, int) else (int(x) if x.denominator == 1 else float(x))


__all__ = [
    "CodeTable",
    "CompareResult",
    "FormatInfo",
    "FormatList",
    "ShowResult",
    "compare",
    "formats_list",
    "info",
    "scientific",
    "show",
    "show_code",
    "table",
]
