"""Rounding modes and overflow policies, and the names people write them with."""

from __future__ import annotations

import enum
from typing import TypeVar

from numfmt.errors import NumfmtError

E = TypeVar("E", bound=enum.Enum)


def parse_enum(cls: type[E], value: str | E, what: str, aliases: dict[str, str]) -> E:
    """A member of a str enum from its value or an alias (case and _ / - do not matter)."""
    if isinstance(value, cls):
        return value
    key = str(value).strip().lower().replace("_", "-")
    try:
        return cls(aliases.get(key, key))
    except ValueError:
        names = ", ".join(m.value for m in cls)
        raise NumfmtError(f"unknown {what} '{value}'; choose one of {names}") from None


class Rounding(str, enum.Enum):
    """How a value between two representable neighbours picks one.

    ================  =========================================================
    NEAREST_EVEN      nearest; a tie goes to the even code (IEEE 754 default)
    NEAREST_AWAY      nearest; a tie goes away from zero
    NEAREST_ZERO      nearest; a tie goes toward zero
    TOWARD_ZERO       truncate the magnitude
    UP                toward +inf (ceiling)
    DOWN              toward -inf (floor)
    ODD               truncate, then make the last bit 1 if anything was cut off (von
                      Neumann's jamming): the neighbour whose code is odd. Rounding to odd at
                      two bits more than a target keeps enough to round to the target in any
                      mode afterwards, as if once. Beyond the range it keeps the largest
                      finite value, as truncation does
    STOCHASTIC        up with probability equal to the distance from the lower
                      neighbour over the gap; seeded, so runs repeat
    ================  =========================================================
    """

    NEAREST_EVEN = "nearest-even"
    NEAREST_AWAY = "nearest-away"
    NEAREST_ZERO = "nearest-zero"
    TOWARD_ZERO = "toward-zero"
    UP = "up"
    DOWN = "down"
    ODD = "odd"
    STOCHASTIC = "stochastic"

    @classmethod
    def parse(cls, value: str | Rounding) -> Rounding:
        """Read a rounding mode from its name or a common alias (rne, rtz, floor ...)."""
        return parse_enum(cls, value, "rounding mode", _ROUNDING_ALIASES)

    @property
    def code(self) -> int:
        """A small integer for the compiled kernels."""
        return list(Rounding).index(self)


_ROUNDING_ALIASES = {
    "rne": "nearest-even",
    "nearest": "nearest-even",
    "even": "nearest-even",
    "rna": "nearest-away",
    "away": "nearest-away",
    "rnz": "nearest-zero",
    "ties-to-zero": "nearest-zero",
    "ties-toward-zero": "nearest-zero",
    "rto": "odd",
    "round-to-odd": "odd",
    "to-odd": "odd",
    "jam": "odd",
    "rtz": "toward-zero",
    "truncate": "toward-zero",
    "trunc": "toward-zero",
    "rtp": "up",
    "ceil": "up",
    "toward-positive": "up",
    "rtn": "down",
    "floor": "down",
    "toward-negative": "down",
    "sr": "stochastic",
}


class Overflow(str, enum.Enum):
    """What happens to a value beyond the largest the format holds.

    ========  ========================================================================
    IEEE      floats: inf where the format has one, else NaN (fn, fnuz, fnu); formats
              with neither saturate (FP6, FP4, as the OCP MX spec says). Directed
              rounding toward zero gives the largest finite value, as IEEE 754 does.
    SATURATE  clamp to the largest (or most negative) finite value; inf too
    ERROR     raise NotRepresentableError
    WRAP      integers only: keep the low bits (two's complement wraparound, a C cast)
    ========  ========================================================================
    """

    IEEE = "ieee"
    SATURATE = "saturate"
    ERROR = "error"
    WRAP = "wrap"

    @classmethod
    def parse(cls, value: str | Overflow) -> Overflow:
        """Read an overflow policy from its name (``sat`` and ``clamp`` mean saturate)."""
        aliases = {"sat": "saturate", "clamp": "saturate", "raise": "error"}
        return parse_enum(cls, value, "overflow policy", aliases)
