"""The numba kernels of ``numfmt.arith``: ``_core``'s scalar functions, compiled, over arrays.

Imported only when an array operation first runs (numba compiles on first use and caches the
result on disk).
"""

import numba
import numpy as np

from numfmt._numba import compile_functions
from numfmt.arith import _core as ac
from numfmt.formats import _core as fc

_FORMATS = compile_functions(fc, ["classify_one"])
_ARITH = compile_functions(
    ac,
    [
        "two_sum", "_split", "two_prod", "odd", "_scaled", "_exponent", "_nan", "_zero",
        "_exact_sum_zero", "_finite", "add", "mul", "div", "sqrt", "fma", "apply", "daz",
        "round_result",
    ],
    _FORMATS,
)
_apply, _round, _daz = _ARITH["apply"], _ARITH["round_result"], _ARITH["daz"]


@numba.njit(parallel=True, cache=True)
def elementwise(op, a, b, c, out, plan, u, ftz, daz, min_normal):
    """out[i] = the code of op(a[i], b[i], c[i]) in plan's format.

    Returns (how many results the plan refused, and the count of each flag: inexact,
    underflow, overflow, invalid, divide-by-zero).
    """
    mode = plan[fc.P_MODE]
    stochastic = u.size == out.size
    refused = inexact = underflow = overflow = invalid = divide = 0
    for i in numba.prange(out.size):
        x, y, z = np.float64(a[i]), np.float64(b[i]), np.float64(c[i])
        if daz:
            x, y, z = _daz(x, min_normal), _daz(y, min_normal), _daz(z, min_normal)
        kind, neg, mag, exp, flags = _apply(op, x, y, z, mode)
        code, slot, flags = _round(
            kind, neg, mag, exp, flags, u[i] if stochastic else 0.0, plan, ftz
        )
        out[i] = code
        refused += slot != fc.NO_ERROR
        inexact += flags & ac.INEXACT != 0
        underflow += flags & ac.UNDERFLOW != 0
        overflow += flags & ac.OVERFLOW != 0
        invalid += flags & ac.INVALID != 0
        divide += flags & ac.DIVIDE_BY_ZERO != 0
    return refused, inexact, underflow, overflow, invalid, divide
