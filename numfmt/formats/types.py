"""What a number format is: frozen value objects for floats, integers and fixed point.

A format is defined by a handful of integers; everything else (the largest value, the
smallest subnormal, the code of NaN, ...) is derived from them as a property, so two formats
with the same definition are equal and hash alike.

==============  =======================================  ==================================
class           defined by                               examples
==============  =======================================  ==================================
FloatFormat     exponent bits, mantissa bits, bias,      float32, bfloat16, float8_e4m3fn,
                a convention for special values          float4_e2m1fn, float8_e8m0fnu
IntFormat       bits, signed (two's complement) or not   int8, int4, uint8, int1
FixedFormat     integer bits M, fraction bits N (signed) q3.4 (8 bits), q0.15 (16 bits)
==============  =======================================  ==================================

The conventions for special values, spelled as ml_dtypes suffixes:

=========  ===========  ========================================================  ============
Specials   suffix       meaning                                                   example
=========  ===========  ========================================================  ============
IEEE       (none)       top exponent reserved: inf (mantissa 0) and NaN (others)  float16
FN         ``fn``       finite: no inf; NaN only at the all-ones magnitude        float8_e4m3fn
FNUZ       ``fnuz``     finite, unsigned zero: no inf, no -0, one NaN at 0x80;    float8_e5m2fnuz
                        bias 2^(e-1) unless given
FINITE     ``fnn``      every code is a number: no inf, no NaN                    float4_e2m1fn
FNU        ``fnu``      unsigned, no zero, no subnormals, NaN at all ones         float8_e8m0fnu
=========  ===========  ========================================================  ============

The OCP FP6/FP4 formats keep their ml_dtypes names (``float6_e2m3fn``, ``float4_e2m1fn``)
although they have no NaN at all; a custom finite-only format is written ``e3m3fnn``.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from numfmt.errors import NumfmtError

MAX_BITS = 64


class Specials(str, enum.Enum):
    """How a float format spends its codes on infinities, NaN and zero."""

    IEEE = "ieee"
    FN = "fn"
    FNUZ = "fnuz"
    FINITE = "finite"
    FNU = "fnu"

    @property
    def suffix(self) -> str:
        """The suffix that spells this convention in a format name."""
        return {"ieee": "", "fn": "fn", "fnuz": "fnuz", "finite": "fnn", "fnu": "fnu"}[self.value]


def _code_dtype(bits: int) -> np.dtype:
    for width in (8, 16, 32, 64):
        if bits <= width:
            return np.dtype(f"uint{width}")
    raise NumfmtError(f"formats hold at most {MAX_BITS} bits, not {bits}")


def _pow2(k: int) -> Fraction:
    return Fraction(2) ** k


class Format:
    """What every format offers: a name, a width, a range, and a kind."""

    kind: str

    @property
    def name(self) -> str:  # pragma: no cover - every subclass defines it
        raise AssertionError("subclasses define name")

    @property
    def bits(self) -> int:  # pragma: no cover
        raise AssertionError("subclasses define bits")

    @property
    def num_codes(self) -> int:
        """How many bit patterns the format has: 2 ** bits."""
        return 1 << self.bits

    @property
    def code_dtype(self) -> np.dtype:
        """The smallest unsigned numpy dtype that holds one code."""
        return _code_dtype(self.bits)

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class FloatFormat(Format):
    """A binary floating-point format: sign, exponent and mantissa fields.

    Args:
        exponent_bits: width of the exponent field (at least 1).
        mantissa_bits: width of the stored mantissa (trailing significand) field.
        bias: exponent bias; default 2^(e-1) - 1, or 2^(e-1) for ``fnuz`` formats.
        specials: the convention for inf, NaN and zero (see the module table).

    Examples:
        >>> bf16 = FloatFormat(8, 7)
        >>> bf16.name, bf16.bits, float(bf16.max_value)
        ('bfloat16', 16, 3.3895313892515355e+38)
    """

    exponent_bits: int
    mantissa_bits: int
    bias: int = None  # type: ignore[assignment]  # resolved in __post_init__
    specials: Specials = Specials.IEEE
    kind: str = field(default="float", init=False, repr=False, compare=False)

    if TYPE_CHECKING:  # the dataclass's own __init__, as it is called

        def __init__(
            self,
            exponent_bits: int,
            mantissa_bits: int,
            bias: int | None = None,
            specials: Specials | str = Specials.IEEE,
        ) -> None: ...

    def __post_init__(self) -> None:
        e, m = self.exponent_bits, self.mantissa_bits
        object.__setattr__(self, "specials", Specials(self.specials))
        if not (isinstance(e, int) and isinstance(m, int)) or e < 1 or m < 0:
            raise NumfmtError(
                f"a float format needs at least 1 exponent bit and 0 or more mantissa bits, "
                f"not e={e} m={m}"
            )
        if self.bias is None:
            default = 1 << (e - 1) if self.specials is Specials.FNUZ else (1 << (e - 1)) - 1
            object.__setattr__(self, "bias", default)
        if self.specials is Specials.IEEE and m == 0:
            raise NumfmtError("an IEEE-style format needs a mantissa bit to tell NaN from inf")
        limit = MAX_BITS - 1 if self.specials is Specials.FNU else MAX_BITS
        if self.bits > limit:
            raise NumfmtError(f"formats hold at most {limit} bits; e{e}m{m} needs {self.bits}")

    # -- layout ---------------------------------------------------------------------------
    @property
    def signed(self) -> bool:
        """Whether the format has a sign bit (all but the unsigned ``fnu`` scale formats)."""
        return self.specials is not Specials.FNU

    @property
    def bits(self) -> int:
        return int(self.signed) + self.exponent_bits + self.mantissa_bits

    @property
    def precision(self) -> int:
        """Significand bits of a normal number, the hidden bit included."""
        return self.mantissa_bits + 1

    @property
    def name(self) -> str:
        key = (self.exponent_bits, self.mantissa_bits, self.bias, self.specials)
        if key in _WELL_KNOWN:
            return _WELL_KNOWN[key]
        default_bias = FloatFormat(self.exponent_bits, self.mantissa_bits, None, self.specials).bias
        b = "" if self.bias == default_bias else f"b{self.bias}"
        return (
            f"float{self.bits}_e{self.exponent_bits}m{self.mantissa_bits}{b}{self.specials.suffix}"
        )

    @property
    def sign_mask(self) -> int:
        """The code bit that holds the sign (0 for unsigned formats)."""
        return 1 << (self.exponent_bits + self.mantissa_bits) if self.signed else 0

    # -- special values -----------------------------------------------------------------------
    @property
    def has_inf(self) -> bool:
        return self.specials is Specials.IEEE

    @property
    def has_nan(self) -> bool:
        return self.specials is not Specials.FINITE

    @property
    def has_negative_zero(self) -> bool:
        return self.specials in (Specials.IEEE, Specials.FN, Specials.FINITE)

    @property
    def has_zero(self) -> bool:
        return self.specials is not Specials.FNU

    @property
    def has_subnormals(self) -> bool:
        return self.specials is not Specials.FNU

    @property
    def inf_code(self) -> int | None:
        """Code of +inf, or None."""
        if not self.has_inf:
            return None
        return ((1 << self.exponent_bits) - 1) << self.mantissa_bits

    @property
    def nan_code(self) -> int | None:
        """Code of the canonical (positive, quiet) NaN, or None."""
        e, m = self.exponent_bits, self.mantissa_bits
        return {
            Specials.IEEE: (((1 << e) - 1) << m) | (1 << (m - 1)) if m else None,
            Specials.FN: (1 << (e + m)) - 1,
            Specials.FNUZ: 1 << (e + m),
            Specials.FINITE: None,
            Specials.FNU: (1 << (e + m)) - 1,
        }[self.specials]

    # -- exponent range -----------------------------------------------------------------------
    @property
    def emin(self) -> int:
        """Exponent of the smallest normal number (1 - bias; -bias without subnormals)."""
        return int(self.has_subnormals) - self.bias

    @property
    def max_magnitude_code(self) -> int:
        """The magnitude bits (sign cleared) of the largest finite value."""
        e, m = self.exponent_bits, self.mantissa_bits
        top = (1 << (e + m)) - 1
        return {
            Specials.IEEE: (((1 << e) - 1) << m) - 1,
            Specials.FN: top - 1,
            Specials.FNUZ: top,
            Specials.FINITE: top,
            Specials.FNU: top - 1,
        }[self.specials]

    @property
    def emax(self) -> int:
        """Exponent of the largest finite value."""
        return (self.max_magnitude_code >> self.mantissa_bits) - self.bias

    # -- values (exact) -------------------------------------------------------------------------
    def magnitude_value(self, magnitude_code: int) -> Fraction:
        """The exact value of a magnitude code (sign cleared) that is a finite number."""
        m = self.mantissa_bits
        biased, frac = magnitude_code >> m, magnitude_code & ((1 << m) - 1)
        if biased == 0 and self.has_subnormals:
            return frac * _pow2(self.emin - m)
        return ((1 << m) + frac) * _pow2(biased - self.bias - m)

    @cached_property
    def max_value(self) -> Fraction:
        """The largest finite value, exactly."""
        return self.magnitude_value(self.max_magnitude_code)

    @property
    def min_value(self) -> Fraction:
        """The most negative finite value, exactly (the smallest value if unsigned)."""
        return -self.max_value if self.signed else self.magnitude_value(0)

    @property
    def min_normal(self) -> Fraction:
        return _pow2(self.emin)

    @property
    def smallest(self) -> Fraction:
        """The smallest positive value (the smallest subnormal where there are subnormals)."""
        return _pow2(self.emin - self.mantissa_bits) if self.has_subnormals else self.min_normal

    @property
    def epsilon(self) -> Fraction:
        """The gap between 1 and the next larger value: 2^-mantissa_bits."""
        return _pow2(-self.mantissa_bits)

    @property
    def num_finite(self) -> int:
        """How many codes decode to a finite number (+0 and -0 counted apart)."""
        magnitudes = self.max_magnitude_code + 1
        if not self.signed:
            return magnitudes
        both = 2 * magnitudes
        return both - 1 if self.specials is Specials.FNUZ else both

    @property
    def binades(self) -> float:
        """Dynamic range in binades: log2(max / smallest positive)."""
        return _log2(self.max_value) - _log2(self.smallest)

    @property
    def normal_binades(self) -> float:
        """Binades spanned by normal numbers: log2(max / min_normal)."""
        return _log2(self.max_value) - self.emin

    @property
    def ml_dtype(self) -> np.dtype | None:
        """The numpy / ml_dtypes dtype with exactly this layout, if one exists."""
        return _ml_dtype(self.name)


@dataclass(frozen=True)
class IntFormat(Format):
    """An integer format: two's complement when signed, plain binary when not.

    Examples:
        >>> IntFormat(4).min_value, IntFormat(4).max_value
        (-8, 7)
    """

    width: int
    signed: bool = True
    kind: str = field(default="int", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.width, int) or not 1 <= self.width <= MAX_BITS:
            raise NumfmtError(f"integer formats have 1 to {MAX_BITS} bits, not {self.width}")

    @property
    def bits(self) -> int:
        return self.width

    @property
    def name(self) -> str:
        return f"{'' if self.signed else 'u'}int{self.width}"

    @property
    def min_value(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_value(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def smallest(self) -> int:
        return 1

    @property
    def num_finite(self) -> int:
        return 1 << self.width

    @property
    def value_dtype(self) -> np.dtype:
        """The numpy integer dtype that :func:`numfmt.decode` returns for this format."""
        for width in (8, 16, 32, 64):
            if self.width <= width:
                return np.dtype(f"{'int' if self.signed else 'uint'}{width}")
        raise AssertionError("width checked in __post_init__")

    def value_of(self, code: int) -> int:
        """The integer a code stands for (two's complement when signed)."""
        if self.signed and code >= 1 << (self.width - 1):
            return code - (1 << self.width)
        return code


@dataclass(frozen=True)
class FixedFormat(Format):
    """Signed fixed point ``qM.N``: a two's-complement integer of 1 + M + N bits times 2^-N.

    Examples:
        >>> q = FixedFormat(3, 4)
        >>> q.bits, float(q.max_value), float(q.resolution)
        (8, 7.9375, 0.0625)
    """

    int_bits: int
    frac_bits: int
    kind: str = field(default="fixed", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ok = isinstance(self.int_bits, int) and isinstance(self.frac_bits, int)
        if not ok or self.int_bits < 0 or self.frac_bits < 0 or self.bits > MAX_BITS:
            raise NumfmtError(
                f"fixed point qM.N needs M, N >= 0 and 1 + M + N <= {MAX_BITS} bits, "
                f"not q{self.int_bits}.{self.frac_bits}"
            )

    @property
    def bits(self) -> int:
        return 1 + self.int_bits + self.frac_bits

    @property
    def name(self) -> str:
        return f"q{self.int_bits}.{self.frac_bits}"

    @property
    def signed(self) -> bool:
        return True

    @property
    def integer(self) -> IntFormat:
        """The integer format that stores the codes."""
        return IntFormat(self.bits, signed=True)

    @property
    def resolution(self) -> Fraction:
        """The step between neighbouring values: 2^-N."""
        return _pow2(-self.frac_bits)

    @property
    def min_value(self) -> Fraction:
        return self.integer.min_value * self.resolution

    @property
    def max_value(self) -> Fraction:
        return self.integer.max_value * self.resolution

    @property
    def smallest(self) -> Fraction:
        return self.resolution

    @property
    def num_finite(self) -> int:
        return 1 << self.bits


AnyFormat = FloatFormat | IntFormat | FixedFormat


def _log2(x: Fraction) -> float:
    """log2 of a positive exact value, without overflowing float."""
    return math.log2(x.numerator) - math.log2(x.denominator)


# Names for layouts that do not follow the float{bits}_e{E}m{M}{suffix} rule.
_WELL_KNOWN: dict[tuple[int, int, int, Specials], str] = {
    (11, 52, 1023, Specials.IEEE): "float64",
    (8, 23, 127, Specials.IEEE): "float32",
    (8, 10, 127, Specials.IEEE): "tf32",
    (5, 10, 15, Specials.IEEE): "float16",
    (8, 7, 127, Specials.IEEE): "bfloat16",
    (2, 3, 1, Specials.FINITE): "float6_e2m3fn",
    (3, 2, 3, Specials.FINITE): "float6_e3m2fn",
    (2, 1, 1, Specials.FINITE): "float4_e2m1fn",
}


def _ml_dtype(name: str) -> np.dtype | None:
    if name in ("float64", "float32", "float16"):
        return np.dtype(name)
    import ml_dtypes

    dt = getattr(ml_dtypes, name, None)
    return np.dtype(dt) if dt is not None else None
