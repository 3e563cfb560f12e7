"""Format names: the named formats, their aliases, and the families spelled by a pattern.

Names are resolved in one place, in this order:

1. an alias (``bf16``, ``fp8_e4m3``, ``e4m3``, ``fp4`` ...);
2. a canonical name as ml_dtypes spells it (``bfloat16``, ``float8_e4m3fn`` ...);
3. a pattern: ``eXmY`` with an optional bias ``bB`` and suffix (``e3m3fn``, ``e4m3b11fnuz``,
   ``e5m0fnu``), ``intN``, ``uintN``, or fixed point ``qM.N``.

Note that ``e4m3`` means the OCP FP8 format ``float8_e4m3fn`` (what everyone means by "FP8
E4M3"); the IEEE-style variant with infinities is ``float8_e4m3``.
"""

from __future__ import annotations

import difflib
import re

from numfmt.errors import FormatNameError
from numfmt.formats.types import AnyFormat, FixedFormat, FloatFormat, Format, IntFormat, Specials

_F = FloatFormat
_NAMED_LIST: list[FloatFormat] = [
    _F(11, 52),
    _F(8, 23),
    _F(8, 10),
    _F(5, 10),
    _F(8, 7),
    _F(4, 3, specials=Specials.FN),
    _F(5, 2),
    _F(4, 3),
    _F(3, 4),
    _F(4, 3, specials=Specials.FNUZ),
    _F(5, 2, specials=Specials.FNUZ),
    _F(4, 3, bias=11, specials=Specials.FNUZ),
    _F(2, 3, specials=Specials.FINITE),
    _F(3, 2, specials=Specials.FINITE),
    _F(2, 1, specials=Specials.FINITE),
    _F(8, 0, specials=Specials.FNU),
]

#: The named formats, by canonical name, in the order ``numfmt formats`` lists them.
NAMED: dict[str, FloatFormat] = {f.name: f for f in _NAMED_LIST}

#: Short names people use, each pointing at a canonical name.
ALIASES: dict[str, str] = {
    "fp64": "float64",
    "double": "float64",
    "fp32": "float32",
    "single": "float32",
    "fp16": "float16",
    "half": "float16",
    "bf16": "bfloat16",
    "fp8_e4m3": "float8_e4m3fn",
    "e4m3": "float8_e4m3fn",
    "e4m3fn": "float8_e4m3fn",
    "fp8_e5m2": "float8_e5m2",
    "e5m2": "float8_e5m2",
    "e4m3fnuz": "float8_e4m3fnuz",
    "e5m2fnuz": "float8_e5m2fnuz",
    "e4m3b11fnuz": "float8_e4m3b11fnuz",
    "fp8_e3m4": "float8_e3m4",
    "fp6_e2m3": "float6_e2m3fn",
    "e2m3": "float6_e2m3fn",
    "e2m3fn": "float6_e2m3fn",
    "fp6_e3m2": "float6_e3m2fn",
    "e3m2": "float6_e3m2fn",
    "e3m2fn": "float6_e3m2fn",
    "fp4": "float4_e2m1fn",
    "fp4_e2m1": "float4_e2m1fn",
    "e2m1": "float4_e2m1fn",
    "e2m1fn": "float4_e2m1fn",
    "e8m0": "float8_e8m0fnu",
    "e8m0fnu": "float8_e8m0fnu",
}

_FLOAT_RE = re.compile(r"^(?:float(\d+)_)?e(\d+)m(\d+)(?:b(-?\d+))?(fnuz|fnu|fnn|fn)?$")
_INT_RE = re.compile(r"^(u?)int(\d+)$")
_FIXED_RE = re.compile(r"^q(\d+)\.(\d+)$")
_SUFFIX = {
    None: Specials.IEEE,
    "fn": Specials.FN,
    "fnuz": Specials.FNUZ,
    "fnn": Specials.FINITE,
    "fnu": Specials.FNU,
}

#: The families a pattern spells, for help texts and ``numfmt formats``.
FAMILIES: dict[str, str] = {
    "eXmY[bB][fn|fnuz|fnn|fnu]": "custom float: X exponent bits, Y mantissa bits, bias B",
    "intN / uintN": "two's complement / unsigned integer, N = 1..64",
    "qM.N": "signed fixed point: sign + M integer bits + N fraction bits",
}


def get_format(name: str | AnyFormat) -> AnyFormat:
    """Return the format a name stands for (a format object is returned as it is).

    Args:
        name: a canonical name, an alias or a pattern (see the module docstring).

    Returns:
        The format: a FloatFormat, IntFormat or FixedFormat.

    Raises:
        FormatNameError: the name is not known; the message lists the close matches.

    Examples:
        >>> get_format("bf16").name
        'bfloat16'
        >>> get_format("e3m3fn").name
        'float7_e3m3fn'
    """
    if isinstance(name, Format):
        return name
    if not isinstance(name, str):
        raise FormatNameError(f"a format is named by a string, not {type(name).__name__}")
    key = name.strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key in NAMED:
        return NAMED[key]
    fmt = _parse_pattern(key)
    if fmt is not None:
        return fmt
    raise FormatNameError(_unknown_message(name))


def _parse_pattern(key: str) -> AnyFormat | None:
    if match := _FLOAT_RE.match(key):
        total, e, m, bias, suffix = match.groups()
        fmt = FloatFormat(int(e), int(m), None if bias is None else int(bias), _SUFFIX[suffix])
        if total is not None and int(total) != fmt.bits:
            raise FormatNameError(
                f"'{key}' says {total} bits but e{e}m{m}{suffix or ''} has {fmt.bits}"
            )
        return fmt
    if match := _INT_RE.match(key):
        return IntFormat(int(match.group(2)), signed=not match.group(1))
    if match := _FIXED_RE.match(key):
        return FixedFormat(int(match.group(1)), int(match.group(2)))
    return None


def _unknown_message(name: str) -> str:
    choices = [*NAMED, *ALIASES, "int8", "int4", "uint8", "q3.4"]
    close = difflib.get_close_matches(name.strip().lower(), choices, n=4, cutoff=0.6)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    if name.strip().lower() in ("fp8", "float8"):
        hint = " FP8 has two common layouts: fp8_e4m3 or fp8_e5m2."
    return (
        f"unknown format '{name}'.{hint} "
        "Run 'numfmt formats' for the list; custom layouts are written e5m2, e3m3fn, int4, q3.4."
    )


def named_formats() -> list[FloatFormat]:
    """The named float formats, widest first."""
    return list(NAMED.values())


def aliases_of(fmt: AnyFormat) -> list[str]:
    """The aliases that resolve to a format."""
    return [alias for alias, canonical in ALIASES.items() if canonical == fmt.name]
