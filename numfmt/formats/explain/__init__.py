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

from numfmt.formats.explain.results import (
    CodeTable,
    CompareResult,
    Field,
    FormatInfo,
    FormatList,
    Neighbour,
    PolicyOutcome,
    ShowResult,
)
from numfmt.formats.explain.show import DEFAULT_COMPARE, compare, show, show_code
from numfmt.formats.explain.summary import TABLE_MAX_BITS, formats_list, info, table
from numfmt.formats.explain.text import group_bits, hex_code, layout

__all__ = [
    "DEFAULT_COMPARE",
    "TABLE_MAX_BITS",
    "CodeTable",
    "CompareResult",
    "Field",
    "FormatInfo",
    "FormatList",
    "Neighbour",
    "PolicyOutcome",
    "ShowResult",
    "compare",
    "formats_list",
    "group_bits",
    "hex_code",
    "info",
    "layout",
    "show",
    "show_code",
    "table",
]
