"""Arithmetic in any format: each operation's exact result, rounded once.

The floor between ``numfmt.formats`` (what a format is) and ``numfmt.quant`` (tensors into
schemes). ``add(a, b, "bf16", rounding="down")`` is what bf16 hardware rounding down would
give, for every rounding mode numfmt has, including the directed ones and FMA, where
simulators that compute in float32 or float64 and round afterwards go wrong.
"""

from numfmt.arith.array import Array
from numfmt.arith.context import Context, Flags
from numfmt.arith.elementwise import abs, add, div, fma, mul, neg, round, sqrt, sub
from numfmt.arith.sums import ORDERS, SumResult, cumsum, dot, exact_sum, sum, summation

__all__ = [
    "ORDERS",
    "Array",
    "Context",
    "Flags",
    "SumResult",
    "abs",
    "add",
    "cumsum",
    "div",
    "dot",
    "exact_sum",
    "fma",
    "mul",
    "neg",
    "round",
    "sqrt",
    "sub",
    "sum",
    "summation",
]
