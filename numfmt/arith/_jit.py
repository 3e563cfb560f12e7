"""The numba kernels of ``numfmt.arith``: ``_core``'s scalar functions, compiled, over arrays.

Imported only when an array operation first runs (numba compiles on first use and caches the
result on disk). Every function uses numpy's error model: x / 0 is inf or NaN, as in IEEE
754, where numba's default would raise.
"""

import math

import numba
import numpy as np
from numba import types
from numba.extending import intrinsic

from numfmt._numba import compile_functions
from numfmt.arith import _core as ac
from numfmt.formats import _core as fc

_FORMATS = compile_functions(fc, ["classify_one"], inline=())
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
_two_sum, _two_prod = _ARITH["two_sum"], _ARITH["two_prod"]
# the elementwise kernel's fast path, with the rounding inlined into its loop
_round_inline = compile_functions(ac, ["round_split"], compile_functions(fc, ["classify_one"]))[
    "round_split"
]

_MANTISSA = np.int64((1 << 52) - 1)
_HIDDEN = np.int64(1 << 52)


@intrinsic
def _bits(typingctx, x):
    """The bits of a float64 as an int64 (an LLVM bitcast)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.int64))

    return types.int64(types.float64), codegen


@numba.njit(inline="always", error_model="numpy")
def _plain(x):
    """Whether x is nonzero and finite with |x| in [2^-400, 2^401): no error-free step can
    overflow or underflow on such operands, so they need no scaling."""
    field = (_bits(x) >> 52) & 0x7FF
    return (field >= 623) & (field <= 1423)


@numba.njit(inline="always", error_model="numpy")
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


@numba.njit(inline="always", error_model="numpy")
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


@numba.njit(error_model="numpy")
def _odd(r, t):
    return _float(_odd_bits(r, t))


@numba.njit(inline="always", error_model="numpy")
def _one(op, x, y, z, ui, plan, ftz):
    """(code, refused slot, flags) of one operation: the fast path where the operands need
    no scaling, else the general one of ``_core``."""
    ok, r, t = _fast(op, x, y, z)
    if ok:
        bits = _odd_bits(r, t)
        sig = (bits & _MANTISSA) | _HIDDEN
        e = ((bits >> 52) & 0x7FF) - 1023
        return _round_inline(fc.KIND_FINITE, bits < 0, sig, e, 0, ui, plan, ftz)
    kind, neg, mag, exp, flags = _apply(op, x, y, z, plan[fc.P_MODE])
    return _round(kind, neg, mag, exp, flags, ui, plan, ftz)


@numba.njit(nogil=True, cache=True, error_model="numpy")
def elementwise(op, a, b, c, out, plan, u, ftz, daz, min_normal):
    """out[i] = the code of op(a[i], b[i], c[i]) in plan's format.

    Returns (how many results the plan refused, and the count of each flag: inexact,
    underflow, overflow, invalid, divide-by-zero).
    """
    stochastic = u.size == out.size
    refused = inexact = underflow = overflow = invalid = divide = 0
    for i in range(out.size):
        x, y, z = np.float64(a[i]), np.float64(b[i]), np.float64(c[i])
        if daz:
            x, y, z = _daz(x, min_normal), _daz(y, min_normal), _daz(z, min_normal)
        ui = u[i] if stochastic else 0.0
        code, slot, flags = _one(op, x, y, z, ui, plan, ftz)
        out[i] = code
        refused += slot != fc.NO_ERROR
        inexact += flags & ac.INEXACT != 0
        underflow += flags & ac.UNDERFLOW != 0
        overflow += flags & ac.OVERFLOW != 0
        invalid += flags & ac.INVALID != 0
        divide += flags & ac.DIVIDE_BY_ZERO != 0
    return refused, inexact, underflow, overflow, invalid, divide


# -- sums: the running sum stays in the format, so each step decodes the code it rounded to --------
@numba.njit(inline="always", error_model="numpy")
def _value(code, table, wide):
    """The value of a code: from the table of every code (formats of 16 bits or fewer), or
    from its fields (wider formats with IEEE's inf and NaN; wide = (m, emin, sign mask))."""
    if table.size:
        return table[code]
    m, emin, sign = wide
    mag = code & ~sign
    biased = mag >> m
    frac = mag & ((np.int64(1) << m) - 1)
    top = (np.int64(1) << (63 - m)) - 1  # every exponent bit set: masked below
    field_max = (sign >> m) - 1
    if biased == field_max & top:
        v = math.inf if frac == 0 else math.nan
    elif biased == 0:
        v = math.ldexp(float(frac), emin - m)
    else:
        v = math.ldexp(float(frac | (np.int64(1) << m)), emin + biased - 1 - m)
    return -v if code & sign else v


@numba.njit(cache=True, error_model="numpy")
def _add(acc, x, plan, table, wide, ui, ftz):
    """(acc + x rounded into the format, as a value; refused slot; flags)."""
    code, slot, flags = _one(ac.ADD, acc, x, 0.0, ui, plan, ftz)
    return _value(code, table, wide), slot, flags


# the plain running sum's one addition, inlined into its loop (half again as fast; Kahan's four
# stay calls, which keeps the kernel compiling in seconds)
_add_inline = numba.njit(inline="always", error_model="numpy")(_add.py_func)


@numba.njit(nogil=True, cache=True, error_model="numpy")
def sequential(x, plan, table, wide, u, ftz, kahan, running):
    """Each row of x summed left to right, every addition rounded (Kahan's compensated sum
    when kahan: every operation of it rounded too). running (rows, n) receives the partial
    sums when it has that shape.

    Returns (sums, where each row's sum stagnated: the first of the last terms, at least two
    and not all zero, none of which changed it (-1 where there is no such run), refused count,
    flag counts).
    """
    rows, n = x.shape
    keep = running.shape[0] == rows
    stochastic = u.size > 0
    sums = np.empty(rows)
    stalls = np.full(rows, -1, dtype=np.int64)
    refused = inexact = underflow = overflow = invalid = divide = 0
    k = 0
    for row in range(rows):
        acc, comp = -0.0, 0.0  # -0 is the sum of nothing: -0 + x is x for every x
        last, lost = -1, False  # the last term that changed the sum; a nonzero term since
        for i in range(n):
            xi = np.float64(x[row, i])
            before = acc
            if kahan:
                y, s1, f1 = _add(xi, -comp, plan, table, wide, u[k] if stochastic else 0.0, ftz)
                t, s2, f2 = _add(acc, y, plan, table, wide, u[k + 1] if stochastic else 0.0, ftz)
                d, s3, f3 = _add(t, -acc, plan, table, wide, 0.0, ftz)
                comp, s4, f4 = _add(d, -y, plan, table, wide, 0.0, ftz)
                acc = t
                k += 2
                refused += (s1 != fc.NO_ERROR) + (s2 != fc.NO_ERROR)
                refused += (s3 != fc.NO_ERROR) + (s4 != fc.NO_ERROR)
                flags = f1 | f2 | f3 | f4
            else:
                acc, slot, flags = _add(
                    acc, xi, plan, table, wide, u[k] if stochastic else 0.0, ftz
                )
                k += 1
                refused += slot != fc.NO_ERROR
            inexact += flags & 1
            underflow += (flags >> 1) & 1
            overflow += (flags >> 2) & 1
            invalid += (flags >> 3) & 1
            divide += (flags >> 4) & 1
            if acc != before or acc != acc:
                last, lost = i, False
            elif xi != 0.0:
                lost = True
            if keep:
                running[row, i] = acc
        if lost and n - last > 2 and acc == acc:
            stalls[row] = last + 1
        sums[row] = acc
    return sums, stalls, refused, (inexact, underflow, overflow, invalid, divide)


# Not cached: numba's disk cache of a recursive function crashes when it is loaded again.
@numba.njit(nogil=True, error_model="numpy")
def numpy_order(x, plan, table, wide, ftz):
    """Each row summed in the order of numpy's pairwise sum (numpy/core/src/umath/
    loops_utils.h.src): below 8 terms left to right; up to 128, eight interleaved running
    sums combined as ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7)), then the rest left to right;
    beyond, the halves (the first a multiple of 8) summed that way and added."""
    rows, n = x.shape
    sums = np.empty(rows)
    refused = 0
    for row in range(rows):
        sums[row], r = _pairwise(x[row], 0, n, plan, table, wide, ftz)
        refused += r
    return sums, refused


@numba.njit(error_model="numpy")
def _pairwise(x, lo, n, plan, table, wide, ftz):
    refused = 0
    if n < 8:
        acc = -0.0
        for i in range(lo, lo + n):
            acc, slot, _ = _add(acc, np.float64(x[i]), plan, table, wide, 0.0, ftz)
            refused += slot != fc.NO_ERROR
        return acc, refused
    if n <= 128:
        r = np.empty(8)
        for j in range(8):
            r[j] = np.float64(x[lo + j])
        i = 8
        while i < n - (n % 8):
            for j in range(8):
                r[j], slot, _ = _add(r[j], np.float64(x[lo + i + j]), plan, table, wide, 0.0, ftz)
                refused += slot != fc.NO_ERROR
            i += 8
        a, s1, _ = _add(r[0], r[1], plan, table, wide, 0.0, ftz)
        b, s2, _ = _add(r[2], r[3], plan, table, wide, 0.0, ftz)
        c, s3, _ = _add(r[4], r[5], plan, table, wide, 0.0, ftz)
        d, s4, _ = _add(r[6], r[7], plan, table, wide, 0.0, ftz)
        ab, s5, _ = _add(a, b, plan, table, wide, 0.0, ftz)
        cd, s6, _ = _add(c, d, plan, table, wide, 0.0, ftz)
        acc, s7, _ = _add(ab, cd, plan, table, wide, 0.0, ftz)
        for s in (s1, s2, s3, s4, s5, s6, s7):
            refused += s != fc.NO_ERROR
        for k in range(i, n):
            acc, slot, _ = _add(acc, np.float64(x[lo + k]), plan, table, wide, 0.0, ftz)
            refused += slot != fc.NO_ERROR
        return acc, refused
    half = n // 2
    half -= half % 8
    left, r1 = _pairwise(x, lo, half, plan, table, wide, ftz)
    right, r2 = _pairwise(x, lo + half, n - half, plan, table, wide, ftz)
    total, slot, _ = _add(left, right, plan, table, wide, 0.0, ftz)
    return total, r1 + r2 + (slot != fc.NO_ERROR)
