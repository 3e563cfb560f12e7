"""The result objects of the explanations: numbers, not layout (``to_dict`` for ``--json``;
``__rich__`` and ``_repr_html_`` through ``numfmt.render``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from numfmt._display import Displayable
from numfmt.formats.explain.text import fraction_text, group_bits, hex_code, layout, opt_float
from numfmt.formats.registry import aliases_of
from numfmt.formats.rounding import Overflow, Rounding
from numfmt.formats.types import AnyFormat, FloatFormat, IntFormat
from numfmt.formats.value import ExactValue, to_float


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
            assert self.bits is not None  # the code is there
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
        assert self.stored is not None and self.exact_input is not None  # _both_finite
        return abs(self.stored.fraction - self.exact_input.fraction)

    @property
    def rel_error(self) -> Fraction | None:
        """abs_error / |input| (0 when both are 0)."""
        err = self.abs_error
        if err is None:
            return None
        assert self.exact_input is not None  # err is None without it
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
            "stored_fraction": fraction_text(self.stored),
            "value": None if self.stored is None else float(self.stored),
            "class": self.cls,
            "event": self.event,
            "abs_error": opt_float(self.abs_error),
            "rel_error": opt_float(self.rel_error),
            "ulp_error": opt_float(self.ulp_error),
            "ulp": opt_float(self.ulp),
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
