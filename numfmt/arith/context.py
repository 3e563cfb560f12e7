"""What an arithmetic is computed in: the format and its rules, and the IEEE flags raised.

A ``Context`` carries the format, rounding mode, overflow policy, subnormal handling and the
seed of stochastic rounding, as MPFR's and gmpy2's contexts do, and counts the IEEE 754
exceptions its operations raise (``Flags``). The module-level functions of ``numfmt.arith``
build a context for one call.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from numfmt._display import grouped
from numfmt.errors import NumfmtError
from numfmt.formats.encode import default_overflow
from numfmt.formats.registry import get_format
from numfmt.formats.rounding import Overflow, Rounding
from numfmt.formats.types import AnyFormat, FixedFormat, FloatFormat

#: The widest significand numfmt computes in exactly: results are rounded to odd at float64's
#: 53 bits first, which keeps every rounding mode exact for targets of 51 bits or fewer.
MAX_PRECISION = 51
_FLOAT64_MAX = Fraction(np.finfo(np.float64).max.item())

#: The widest integer or fixed-point format: exact results pass through float64, whose 53
#: bits hold every integer of this many bits with two to spare.
MAX_INTEGER_BITS = 50


@dataclass
class Flags:
    """How many results raised each IEEE 754 exception (counts, not sticky bits).

    ==============  ===========================================================================
    inexact         the result differs from the exact value
    underflow       the exact value was nonzero and below the smallest normal, and the result
                    inexact (tininess detected before rounding)
    overflow        the exact value rounded beyond the largest finite value
    invalid         no real answer: 0/0, inf - inf, 0 * inf, inf / inf, sqrt of a negative
    divide_by_zero  a finite nonzero number divided by zero
    ==============  ===========================================================================
    """

    inexact: int = 0
    underflow: int = 0
    overflow: int = 0
    invalid: int = 0
    divide_by_zero: int = 0

    NAMES = ("inexact", "underflow", "overflow", "invalid", "divide_by_zero")

    def add(self, counts) -> None:
        """Add counts, in the order of ``NAMES``."""
        for name, n in zip(self.NAMES, counts, strict=True):
            setattr(self, name, getattr(self, name) + int(n))

    def counts(self) -> tuple[int, ...]:
        """The counts, in the order of ``NAMES`` (what ``add`` takes)."""
        return tuple(getattr(self, name) for name in self.NAMES)

    def raised(self) -> list[str]:
        """The names of the flags with a nonzero count."""
        return [name for name in self.NAMES if getattr(self, name)]

    def clear(self) -> None:
        """Set every count back to zero."""
        for name in self.NAMES:
            setattr(self, name, 0)

    def to_dict(self) -> dict[str, int]:
        return dict(zip(self.NAMES, self.counts(), strict=True))

    def __str__(self) -> str:
        raised = [f"{name} {grouped(getattr(self, name))}" for name in self.raised()]
        return ", ".join(raised) if raised else "none"


@dataclass
class Context:
    """The format a computation runs in, and how it rounds.

    Args:
        fmt: a float format of up to 51 significand bits (IEEE, OCP FP8/FP6/FP4, bf16, any
            eXmY), or an integer or fixed-point format of up to 50 bits.
        rounding: any mode of ``numfmt.Rounding``.
        overflow: an overflow policy; None for the format's default (IEEE for floats, an
            error for integers).
        ftz: flush results that round to a subnormal to a zero of their sign.
        daz: read operands below the smallest normal as zeros of their sign.
        seed: the seed of stochastic rounding; a context draws a fresh stream from it, so
            successive operations get different random numbers and runs repeat.
        random_bits: stochastic rounding with this many random bits, as hardware does (the
            probability of rounding up is the distance to the lower neighbour cut to that many
            bits); None for full float64 random numbers.

    Example:
        >>> import numpy as np
        >>> ctx = Context("fp16")
        >>> ctx.add(np.float32(0.5), np.float32(2048.0)).item()
        2048.0
        >>> ctx.flags.inexact
        1
    """

    # the fields as __post_init__ leaves them (__init__, below, also takes names and None)
    fmt: AnyFormat
    rounding: Rounding = Rounding.NEAREST_EVEN
    overflow: Overflow = None  # type: ignore[assignment]  # resolved in __post_init__
    ftz: bool = False
    daz: bool = False
    seed: int = 0
    random_bits: int | None = None
    flags: Flags = field(default_factory=Flags, compare=False)

    if TYPE_CHECKING:  # the dataclass's own __init__, as it is called

        def __init__(
            self,
            fmt: AnyFormat | str,
            rounding: Rounding | str = Rounding.NEAREST_EVEN,
            overflow: Overflow | str | None = None,
            ftz: bool = False,
            daz: bool = False,
            seed: int = 0,
            random_bits: int | None = None,
            flags: Flags = ...,
        ) -> None: ...

    def __post_init__(self) -> None:
        self.fmt = check_format(get_format(self.fmt))
        self.rounding = Rounding.parse(self.rounding)
        if self.overflow is None:
            self.overflow = default_overflow(self.fmt)
        self.overflow = Overflow.parse(self.overflow)
        if isinstance(self.fmt, FloatFormat) and self.overflow is Overflow.WRAP:
            raise NumfmtError(f"overflow 'wrap' is for integers; {self.fmt.name} is a float")
        if not isinstance(self.fmt, FloatFormat) and self.overflow is Overflow.IEEE:
            raise NumfmtError(
                f"overflow 'ieee' is for floats; {self.fmt.name} takes saturate, wrap or error"
            )
        if not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise NumfmtError(f"the seed is a whole number >= 0, not {self.seed!r}")
        if self.random_bits is not None and not 1 <= int(self.random_bits) <= 52:
            raise NumfmtError(f"random_bits must be 1 .. 52, not {self.random_bits}")
        self._rng = np.random.default_rng(self.seed)

    def replace(self, **changes) -> Context:
        """A new context with some settings changed (and flags of its own)."""
        kept = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        kept.update(changes, flags=Flags())
        return Context(**kept)

    def settings(self) -> dict:
        """The settings beyond the format and the rounding mode, for a result's record: the
        overflow policy; ftz and daz where either is set; the seed and random bits where the
        rounding is stochastic."""
        out: dict = {"overflow": self.overflow.value}
        if self.ftz or self.daz:
            out.update(ftz=bool(self.ftz), daz=bool(self.daz))
        if self.rounding is Rounding.STOCHASTIC:
            out.update(seed=self.seed, random_bits=self.random_bits)
        return out

    def uniforms(self, n: int) -> np.ndarray:
        """n random numbers for stochastic rounding, u < p meaning "round up with probability
        p" (cut to ``random_bits`` bits where set)."""
        u = self._rng.random(n)
        if self.random_bits is None:
            return u
        # up iff k < floor(p * 2^r) for k uniform in [0, 2^r): that is (k + 1) / 2^r <= p; the
        # kernels test u < p, so u is the float64 just below (k + 1) / 2^r.
        scale = 2.0 ** int(self.random_bits)
        return np.nextafter((np.floor(u * scale) + 1.0) / scale, 0.0)

    # the operations, in this context (their docstrings live in numfmt.arith.elementwise)
    def add(self, a, b):
        return _ops().apply("add", (a, b), self)

    def sub(self, a, b):
        return _ops().apply("sub", (a, b), self)

    def mul(self, a, b):
        return _ops().apply("mul", (a, b), self)

    def div(self, a, b):
        return _ops().apply("div", (a, b), self)

    def fma(self, a, b, c):
        return _ops().apply("fma", (a, b, c), self)

    def sqrt(self, a):
        return _ops().apply("sqrt", (a,), self)

    def array(self, values):
        """values as an ``Array`` of this context: its operators round in the format."""
        from numfmt.arith.array import Array

        return Array(values, self)

    def round(self, a):
        """Operands put into the format (one rounding each), as values."""
        return _ops().apply("round", (a,), self)

    def neg(self, a):
        return _ops().apply("neg", (a,), self)

    def abs(self, a):
        return _ops().apply("abs", (a,), self)


def _ops():
    from numfmt.arith import elementwise

    return elementwise


def check_format(fmt: AnyFormat) -> AnyFormat:
    """fmt, if numfmt computes in it exactly; else a NumfmtError that says why not."""
    if isinstance(fmt, FloatFormat):
        beyond = fmt.max_value > _FLOAT64_MAX or fmt.emin - fmt.mantissa_bits < -1074
        if beyond:
            raise NumfmtError(
                f"numfmt.arith gives its results as float64, and {fmt.name} has values "
                "beyond float64's range (larger than its largest, or smaller than its smallest "
                "subnormal); it computes in formats whose every value float64 holds"
            )
        if fmt.precision > MAX_PRECISION:
            raise NumfmtError(
                f"numfmt.arith computes exactly in floats of up to {MAX_PRECISION} significand "
                f"bits; {fmt.name} has {fmt.precision} (for binary64 itself, numpy's own "
                "arithmetic is correctly rounded to nearest)"
            )
        return fmt
    width = fmt.integer.width if isinstance(fmt, FixedFormat) else fmt.width
    if width > MAX_INTEGER_BITS:
        raise NumfmtError(
            f"numfmt.arith computes exactly in integer and fixed-point formats of up to "
            f"{MAX_INTEGER_BITS} bits; {fmt.name} has {width}"
        )
    return fmt
