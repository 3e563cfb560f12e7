"""Exact values: reading a number as a person wrote it, and writing one back in decimal.

``parse_value("3.14")`` is the rational 157/50 exactly, not the float64 nearest to it, so that a
value is rounded once, from what was written, into the target format.

Accepted forms (each with an optional sign):

=================  =============================================
``3.14``, ``.5``   decimal
``1e-8``           decimal with exponent
``0x1.8p3``        hexadecimal float (C99 ``%a``); ``0x10`` = 16
``0b101.1``        binary, with an optional binary point
``1/3``            fraction of two decimals
``2^-10``          power (``2**-10`` too); integer exponent
``inf``, ``nan``   infinity (``infinity`` too) and not-a-number
``-0``             negative zero
=================  =============================================

Digits may be grouped by threes with ``_`` anywhere, or with a space, a narrow or thin space
or a no-break space before the decimal point (``8 000 000 000``, as numfmt prints counts);
a comma never groups: ``1,000`` is refused with a hint (in much of the world it is 1.000).
"""

from __future__ import annotations

import decimal
import math
import re
from dataclasses import dataclass
from fractions import Fraction

from numfmt.errors import ParseError

ACCEPTED_FORMS = "3.14, -1.5, 1e-8, 0x1.8p3, 0b101.1, 1/3, 2^-10, inf, nan, -0"

#: Thousands grouped by a space (or a narrow, thin or no-break one): 8 000 000 000.
_GROUPED_RE = re.compile(r"^\d{1,3}(?:[ \u00a0\u2009\u202f]\d{3})+(?=$|[.e])")
_GROUP_SPACES = str.maketrans("", "", " \u00a0\u2009\u202f")

_DEC = r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_DEC_RE = re.compile(rf"^{_DEC}$")
_HEX_RE = re.compile(r"^0x([0-9a-f]*)(?:\.([0-9a-f]*))?(?:p([+-]?\d+))?$")
_BIN_RE = re.compile(r"^0b([01]*)(?:\.([01]*))?$")
_FRAC_RE = re.compile(rf"^({_DEC})/({_DEC})$")
_POW_RE = re.compile(r"^(\d+)(?:\^|\*\*)\(?([+-]?\d+)\)?$")
_THOUSANDS_RE = re.compile(r"^\d{1,3},\d{3}$")

#: What numfmt rejects as an exponent (``2^k``, ``1e-k``, ``0x1p-k``): far beyond any format,
#: and slow to build.
_MAX_EXPONENT = 100_000


@dataclass(frozen=True)
class ExactValue:
    """A real number held exactly: a sign, and a rational magnitude, inf or NaN.

    Examples:
        >>> v = parse_value("-0.1")
        >>> v.negative, v.magnitude
        (True, Fraction(1, 10))
    """

    kind: str  # "finite", "inf" or "nan"
    negative: bool = False
    magnitude: Fraction = Fraction(0)

    @classmethod
    def of(cls, x: object) -> ExactValue:
        """The exact value of a Python or numpy number, a Fraction, a Decimal or a string."""
        if isinstance(x, ExactValue):
            return x
        if isinstance(x, str):
            return parse_value(x)
        if isinstance(x, bool):
            x = int(x)
        if isinstance(x, int | Fraction | decimal.Decimal):
            if isinstance(x, decimal.Decimal) and not x.is_finite():
                return cls._special(float(x))
            negative = x < 0 or (isinstance(x, decimal.Decimal) and x.is_signed())
            return cls("finite", bool(negative), abs(Fraction(x)))
        try:
            f = float(x)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ParseError(f"cannot read a number from {type(x).__name__} {x!r}") from None
        if math.isnan(f) or math.isinf(f):
            return cls._special(f)
        return cls("finite", math.copysign(1.0, f) < 0, abs(Fraction(f)))

    @classmethod
    def _special(cls, f: float) -> ExactValue:
        if f != f:
            return cls("nan")
        return cls("inf", f < 0)

    @property
    def is_finite(self) -> bool:
        return self.kind == "finite"

    @property
    def is_nan(self) -> bool:
        return self.kind == "nan"

    @property
    def is_inf(self) -> bool:
        return self.kind == "inf"

    @property
    def is_zero(self) -> bool:
        return self.is_finite and self.magnitude == 0

    @property
    def fraction(self) -> Fraction:
        """The signed exact value (finite values only)."""
        if not self.is_finite:
            raise ValueError(f"{self.kind} has no exact rational value")
        return -self.magnitude if self.negative else self.magnitude

    def __float__(self) -> float:
        if self.is_nan:
            return float("nan")
        if self.is_inf:
            return -float("inf") if self.negative else float("inf")
        return -to_float(self.magnitude) if self.negative else to_float(self.magnitude)

    def __str__(self) -> str:
        sign = "-" if self.negative else ""
        if self.is_nan:
            return "nan"
        if self.is_inf:
            return f"{sign}inf"
        text = exact_decimal(self.magnitude)
        return sign + (text if text is not None else str(self.magnitude))


def floor_log2(x: Fraction) -> int:
    """The binary exponent of a positive rational: 2**e <= x < 2**(e + 1).

    Examples:
        >>> floor_log2(Fraction(3, 10)), floor_log2(Fraction(8))
        (-2, 3)
    """
    num, den = x.numerator, x.denominator
    e = num.bit_length() - den.bit_length()
    return e - 1 if (num << max(-e, 0)) < (den << max(e, 0)) else e


def parse_value(text: str) -> ExactValue:
    """Read a number exactly from the forms in the module table.

    Raises:
        ParseError: the text is none of the accepted forms.

    Examples:
        >>> parse_value("0x1.8p3").magnitude
        Fraction(12, 1)
    """
    raw = text
    s = str(text).strip().lower().replace("_", "")
    negative = s.startswith("-")
    if s[:1] in "+-":
        s = s[1:]
    grouped = _GROUPED_RE.match(s)
    if grouped:
        s = grouped.group(0).translate(_GROUP_SPACES) + s[grouped.end() :]
    magnitude = _parse_magnitude(s)
    if magnitude is None:
        raise ParseError(_unreadable(raw, s))
    if isinstance(magnitude, str):
        return ExactValue(magnitude, negative and magnitude == "inf")
    return ExactValue("finite", negative, magnitude)


def parse_values(text: str) -> tuple[ExactValue, ...]:
    """Read numbers separated by commas, each exactly, as :func:`parse_value` reads one
    (spaces around them are allowed; the decimal mark is a dot).

    Raises:
        ParseError: no numbers at all, an empty place between commas, or a value that is
            none of the accepted forms (the message names it).

    Examples:
        >>> [str(v) for v in parse_values("1.5, -0.5, 1/4, 2^-10")]
        ['1.5', '-0.5', '0.25', '0.0009765625']
    """
    items = [item.strip() for item in str(text).split(",")]
    if not any(items):
        raise ParseError("no numbers given: write them separated by commas, e.g. 1.5,-0.5,3")
    if "" in items:
        raise ParseError(f"'{text}' has an empty place between commas; write a number in each")
    return tuple(parse_value(item) for item in items)


def _unreadable(raw: str, s: str) -> str:
    """Why ``raw`` (``s`` once cleaned, unsigned) is no number: a decimal comma, as much of the
    world writes it (3,14), gets the same number with a dot; anything else, the forms."""
    text = str(raw).strip()
    if s.count(",") == 1:
        try:
            with_dot = _parse_magnitude(s.replace(",", ".")) is not None
        except ParseError:  # 1,5/0: the dot would not help
            with_dot = False
        if with_dot:
            dotted = text.replace(",", ".")
            hint = f"{text} is not a number: write the decimal point as a dot ({dotted})"
            if _THOUSANDS_RE.match(s):  # 1,000 may have meant a thousand
                hint += f", and thousands without a separator ({text.replace(',', '')})"
            return hint
    return f"cannot read '{raw}' as a number; accepted forms: {ACCEPTED_FORMS}"


def _check_exponent(text: str) -> int:
    """An exponent as written, refused beyond ``_MAX_EXPONENT`` (the exact value would take
    seconds to build, and lies far beyond any format)."""
    exp = int(text) if len(text) < 12 else _MAX_EXPONENT + 1
    if abs(exp) > _MAX_EXPONENT:
        raise ParseError(f"exponent {text} is out of range (at most {_MAX_EXPONENT})")
    return exp


def _parse_magnitude(s: str) -> Fraction | str | None:
    if s in ("inf", "infinity"):
        return "inf"
    if s == "nan":
        return "nan"
    if _DEC_RE.match(s):
        _check_exponent(s.partition("e")[2] or "0")
        return Fraction(s)
    if m := _HEX_RE.match(s):
        whole, frac, exp = m.group(1), m.group(2) or "", m.group(3)
        if not whole and not frac:
            return None
        _check_exponent(exp or "0")
        return int(whole + frac or "0", 16) * Fraction(2) ** (int(exp or 0) - 4 * len(frac))
    if m := _BIN_RE.match(s):
        whole, frac = m.group(1), m.group(2) or ""
        if not whole and not frac:
            return None
        return Fraction(int(whole + frac, 2), 1 << len(frac))
    if m := _FRAC_RE.match(s):
        den = Fraction(m.group(2))
        if den == 0:
            raise ParseError(f"'{s}' divides by zero")
        return Fraction(m.group(1)) / den
    if m := _POW_RE.match(s):
        base, exp = int(m.group(1)), _check_exponent(m.group(2))
        if base == 0 and exp < 0:
            raise ParseError(f"'{s}' divides by zero")
        return Fraction(base) ** exp
    return None


def exact_decimal(x: Fraction) -> str | None:
    """The exact decimal expansion of x, or None when it does not terminate (1/3).

    Examples:
        >>> exact_decimal(Fraction(201, 64))
        '3.140625'
    """
    num, den = x.numerator, x.denominator
    twos = (den & -den).bit_length() - 1
    rest = den >> twos
    fives = 0
    while rest % 5 == 0:
        rest //= 5
        fives += 1
    if rest != 1:
        return None
    k = max(twos, fives)
    scaled = abs(num) * (2 ** (k - twos)) * (5 ** (k - fives))  # = |x| * 10^k
    digits = str(scaled).rjust(k + 1, "0")
    text = digits[: len(digits) - k] + ("." + digits[len(digits) - k :] if k else "")
    return ("-" if num < 0 else "") + text


def scientific(x: Fraction | float, digits: int = 6) -> str:
    """x rounded to a number of significant digits, in the shortest readable notation."""
    if isinstance(x, float):
        if x != x or x in (float("inf"), -float("inf")):
            return str(x)
        x = Fraction(x)
    if x == 0:
        return "0"
    with decimal.localcontext() as ctx:
        ctx.prec = digits
        ctx.Emax, ctx.Emin = decimal.MAX_EMAX, decimal.MIN_EMIN
        d = decimal.Decimal(x.numerator) / decimal.Decimal(x.denominator)
    exponent = d.adjusted()
    if -5 <= exponent < digits:
        text = f"{d:f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    mantissa, _, exp = f"{d:e}".partition("e")
    mantissa = mantissa.rstrip("0").rstrip(".") if "." in mantissa else mantissa
    return f"{mantissa}e{int(exp):+03d}"


def to_float(x: Fraction) -> float:
    """The float64 nearest to x (correctly rounded), inf beyond the float64 range."""
    try:
        return float(x)
    except OverflowError:
        return float("inf") if x > 0 else -float("inf")


_CODE_RE = re.compile(r"^(0x[0-9a-f]+|0b[01]+|0o[0-7]+|\d+)$")


def parse_code(text: str) -> int:
    """Read a code: hex ``0x4049``, binary ``0b0100_0000``, octal ``0o17`` or decimal.

    Raises:
        ParseError: the text is not a non-negative integer in one of those forms.

    Examples:
        >>> parse_code("0b0_1111_111")
        127
    """
    s = str(text).strip().lower().replace("_", "")
    if not _CODE_RE.match(s):
        raise ParseError(
            f"cannot read '{text}' as a code; a code is a non-negative integer such as "
            "0x4049, 0b0100000001001001 or 16457"
        )
    return int(s, 0) if not s.isdigit() else int(s)
