"""Formats summarised: ``info`` (as ``numpy.finfo`` and more), ``table`` (every code of a small
format) and ``formats_list``."""

from __future__ import annotations

from typing import Any

from numfmt._display import grouped
from numfmt.errors import NumfmtError
from numfmt.formats.explain.results import CodeTable, FormatInfo, FormatList
from numfmt.formats.explain.show import show_code
from numfmt.formats.explain.text import hex_code, layout, max_text, number, pow2_text
from numfmt.formats.registry import FAMILIES, aliases_of, get_format, named_formats
from numfmt.formats.types import AnyFormat, FixedFormat, FloatFormat, Specials
from numfmt.formats.value import to_float

TABLE_MAX_BITS = 8

_SPECIALS_TEXT = {
    Specials.IEEE: "IEEE 754: top exponent for inf (mantissa 0) and NaN; +0 and -0",
    Specials.FN: "finite (fn): no inf; NaN only where all bits but the sign are 1; +0 and -0",
    Specials.FNUZ: "finite, unsigned zero (fnuz): no inf, no -0; NaN is the code 1000...0",
    Specials.FINITE: "finite only: no inf, no NaN; +0 and -0",
    Specials.FNU: "unsigned exponent-only scale (fnu): powers of two, no zero, NaN at all ones",
}


def info(fmt: str | AnyFormat) -> FormatInfo:
    """A format's summary, as ``numpy.finfo`` / ``ml_dtypes.finfo`` give and more.

    Examples:
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
            ("max_exact", max_text(fmt)),
            ("min_normal", to_float(fmt.min_normal)),
            ("smallest", to_float(fmt.smallest)),
            ("smallest_exact", pow2_text(fmt.smallest)),
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
            ("min", number(fmt.min_value)),
            ("max", number(fmt.max_value)),
            ("resolution", number(fmt.smallest)),
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
            f"{grouped(fmt.num_codes)} codes. Use 'numfmt decode CODE --format {fmt.name}' for one."
        )
    rows = []
    for code in range(fmt.num_codes):
        r = show_code(code, fmt)
        bits, stored = r.bits_grouped, r.stored
        assert bits is not None and stored is not None  # show_code decodes the code
        rows.append((code, bits, stored, r.cls))
    return CodeTable(fmt, tuple(rows))


def formats_list() -> FormatList:
    """Every named format, and the families of names that a pattern spells."""
    return FormatList(tuple(named_formats()), tuple(FAMILIES.items()))
