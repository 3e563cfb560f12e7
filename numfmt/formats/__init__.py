"""The bit-level layer: what a format is, and values <-> codes, exactly and vectorised."""

from numfmt.formats.decode import classify, decode, decode_exact, decode_table
from numfmt.formats.encode import encode, encode_exact, round_to
from numfmt.formats.registry import ALIASES, NAMED, get_format, named_formats
from numfmt.formats.rounding import Overflow, Rounding
from numfmt.formats.types import AnyFormat, FixedFormat, FloatFormat, Format, IntFormat, Specials
from numfmt.formats.value import ExactValue, parse_value

__all__ = [
    "ALIASES",
    "NAMED",
    "AnyFormat",
    "ExactValue",
    "FixedFormat",
    "FloatFormat",
    "Format",
    "IntFormat",
    "Overflow",
    "Rounding",
    "Specials",
    "classify",
    "decode",
    "decode_exact",
    "decode_table",
    "encode",
    "encode_exact",
    "get_format",
    "named_formats",
    "parse_value",
    "round_to",
]
