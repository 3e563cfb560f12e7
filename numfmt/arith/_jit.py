"""The numba kernels of ``numfmt.arith``: ``_core``'s scalar functions, compiled, over arrays.

Imported only when an array operation first runs (numba compiles on first use and caches the
result on disk).
"""

import math

import numba
import numpy as np
from numba import types
from numba.extending import intrinsic

from numfmt._numba import compile_functions
from numfmt.arith import _core as ac
from numfmt.formats import _core as fc

_FORMATS = compile_functions(fc, ["classify_one"])
_ARITH = compile_functions(
    ac,
    [
        "two_sum",
        "_split",
        "two_prod",
        "odd",
        "_scaled",
        "_exponent",
        "_nan",
        "_zero",
        "_exact_sum_zero",
        "_finite",
        "add",
        "mul",
        "div",
        "sqrt",
        "fma",
        "apply",
        "daz",
        "round_result",
        "round_split",
    ],
    _FORMATS,
    inline=("two_sum", "_split", "two_prod", "round_split"),
)
_apply, _round, _daz = _ARITH["apply"], _ARITH["round_result"], _ARITH["daz"]
_round_split, _two_sum, _two_prod = _ARITH["round_split"], _ARITH["two_sum"], _ARITH["two_prod"]

_MANTISSA = np.int64((1 << 52) - 1)
_HIDDEN = np.int64(1 << 52)


@intrinsic
def _bits(typingctx, x):
    """The bits of a float64 as an int64 (an LLVM bitcast)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.int64))

    return types.int64(types.float64), codegen


@numba.njit(inline="always")
def _plain(x):
    """Whether x is nonzero and finite with |x| in [2^-400, 2^401): no error-free step can
    overflow or underflow on such operands, so they need no scaling."""
    field = (_bits(x) >> 52) & 0x7FF
    return (field >= 623) & (field <= 1423)


@numba.njit(inline="always")
def _fast(op, x, y, z):
    """(ok, r, t): op's float64 result r and the sign of the exact remainder in t, for plain
    operands whose result is not an exact zero; ok False sends the element the general way."""
    r, t = 0.0, 0.0
    ok = _plain(x)
    if op == ac.ADD or op == ac.SUB:
        ok &= _plain(y)
        r, t = _two_sum(x, y if op == ac.ADD else -y)
    elif op == ac.MUL:
        ok &= _plain(y)
        r, t = _two_prod(x, y)
    elif op == ac.DIV:
        ok &= _plain(y)
        r = x / y
        ph, pl = _two_prod(r, y)
        t = ((x - ph) - pl) * y  # the sign of the remainder over y
    elif op == ac.FMA:
        ok &= _plain(y) & _plain(z)
        uh, ul = _two_prod(x, y)
        th, tl = _two_sum(z, uh)
        s, st = _two_sum(tl, ul)
        v = _odd(s, st) if s != 0.0 else 0.0
        r, t = _two_sum(th, v)
    else:
        ok &= x > 0.0
        r = math.sqrt(x)
        ph, pl = _two_prod(r, r)
        t = (x - ph) - pl
    return ok and r != 0.0, r, t


@numba.njit(inline="always")
def _odd_bits(r, t):
    """The bits of r + t rounded to odd (r a normal float64, |t| at most half its ulp)."""
    b = _bits(r)
    if t != 0.0:
        b = b | 1 if (t > 0.0) == (r > 0.0) else (b - 1) | 1
    return b


@intrinsic
def _float(typingctx, b):
    """The float64 with the bits of an int64."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return types.float64(types.int64), codegen


@numba.njit
def _odd(r, t):
    return _float(_odd_bits(r, t))


@numba.njit(nogil=True, cache=True)
def elementwise(op, a, b, c, out, plan, u, ftz, daz, min_normal):
    """out[i] = the code of op(a[i], b[i], c[i]) in plan's format.

    Returns (how many results the plan refused, and the count of each flag: inexact,
    underflow, overflow, invalid, divide-by-zero).
    """
    mode = plan[fc.P_MODE]
    stochastic = u.size == out.size
    refused = inexact = underflow = overflow = invalid = divide = 0
    for i in range(out.size):
        x, y, z = np.float64(a[i]), np.float64(b[i]), np.float64(c[i])
        if daz:
            x, y, z = _daz(x, min_normal), _daz(y, min_normal), _daz(z, min_normal)
        ui = u[i] if stochastic else 0.0
        ok, r, t = _fast(op, x, y, z)
        if ok:
            bits = _odd_bits(r, t)
            sig = (bits & _MANTISSA) | _HIDDEN
            e = ((bits >> 52) & 0x7FF) - 1023
            code, slot, flags = _round_split(fc.KIND_FINITE, bits < 0, sig, e, 0, ui, plan, ftz)
        else:
            kind, neg, mag, exp, flags = _apply(op, x, y, z, mode)
            code, slot, flags = _round(kind, neg, mag, exp, flags, ui, plan, ftz)
        out[i] = code
        refused += slot != fc.NO_ERROR
        inexact += flags & ac.INEXACT != 0
        underflow += flags & ac.UNDERFLOW != 0
        overflow += flags & ac.OVERFLOW != 0
        invalid += flags & ac.INVALID != 0
        divide += flags & ac.DIVIDE_BY_ZERO != 0
    return refused, inexact, underflow, overflow, invalid, divide
