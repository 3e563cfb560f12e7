"""numfmt: see a number format bit by bit, choose a quantization scheme, measure what it costs."""

from numfmt.errors import NumfmtError
from numfmt.formats import (
    ExactValue,
    FixedFormat,
    FloatFormat,
    IntFormat,
    Overflow,
    Rounding,
    Specials,
    classify,
    decode,
    decode_exact,
    encode,
    encode_exact,
    get_format,
    parse_value,
    round_to,
)
from numfmt.formats.explain import compare, formats_list, info, show, show_code, table

__version__ = "0.1.0"

#: The model layer's entry points, loaded on first use (they need torch).
_LAZY = {"quantize_model": "numfmt.nn", "load_model": "numfmt.nn"}


def load_ipython_extension(ipython) -> None:
    """``%load_ext numfmt`` in IPython or Jupyter: the ``%numfmt`` line magic runs a command."""
    from numfmt.cli.magic import register

    register(ipython)


def __getattr__(name: str):
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name == "lessons":  # numfmt.lessons.ptq_vs_qat() without importing it first
        return importlib.import_module("numfmt.lessons")
    raise AttributeError(f"module 'numfmt' has no attribute '{name}'")


__all__ = [
    "ExactValue",
    "FixedFormat",
    "FloatFormat",
    "IntFormat",
    "NumfmtError",
    "Overflow",
    "Rounding",
    "Specials",
    "classify",
    "compare",
    "decode",
    "decode_exact",
    "encode",
    "encode_exact",
    "formats_list",
    "get_format",
    "info",
    "load_model",
    "parse_value",
    "quantize_model",
    "round_to",
    "show",
    "show_code",
    "table",
]
