"""The numba kernels of ``numfmt.arith``: ``_core``'s scalar functions, compiled, over arrays.

Imported only when an array operation first runs (numba compiles on first use and caches the
result on disk). Every function uses numpy's error model: x / 0 is inf or NaN, as in IEEE
754, where numba's default would raise.
"""

import math

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from numfmt._numba import compile_functions
from numfmt.arith import _core as ac
from numfmt.formats import _core as fc

_FORMATS = compile_functions(fc, ["increment", "classify_one"], inline=("increment",))
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
        "refused",
        "value_of",
    ],
    _FORMATS,
    inline=("two_sum", "_split", "two_prod", "round_split", "refused"),
)
_apply, _round, _daz = _ARITH["apply"], _ARITH["round_result"], _ARITH["daz"]
_refused, _value_of = _ARITH["refused"], _ARITH["value_of"]
_two_sum = _ARITH["two_sum"]
_increment = _FORMATS["increment"]
# the elementwise kernel's fast path, with the rounding inlined into its loop
_round_inline = compile_functions(
    ac, ["round_split", "refused"], compile_functions(fc, ["increment", "classify_one"])
)["round_split"]

_MANTISSA = np.int64((1 << 52) - 1)
_HIDDEN = np.int64(1 << 52)
_MAGNITUDE = np.int64((1 << 63) - 1)


@intrinsic
def _bits(typingctx, x):
    """The bits of a float64 as an int64 (an LLVM bitcast)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.int64))

    return types.int64(types.float64), codegen


@intrinsic
def _float(typingctx, b):
    """The float64 with the bits of an int64."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return types.float64(types.int64), codegen


@intrinsic
def _fma(typingctx, a, b, c):
    """a * b + c with one rounding (LLVM's fma: the processor's instruction where it has one,
    else the C library's fma, correctly rounded either way)."""

    def codegen(context, builder, signature, args):
        f64 = context.get_value_type(types.float64)
        fnty = ir.FunctionType(f64, [f64, f64, f64])
        fn = builder.module.declare_intrinsic("llvm.fma", [f64], fnty)
        return builder.call(fn, args)

    return types.float64(types.float64, types.float64, types.float64), codegen


@numba.njit(inline="always", error_model="numpy")
def _two_prod(a, b):
    """(p, t) with p = fl(a * b) and a * b = p + t exactly (no overflow or underflow)."""
    p = a * b
    return p, _fma(a, b, -p)


@numba.njit(inline="always", error_model="numpy")
def _plain(x):
    """Whether x is nonzero and finite with |x| in [2^-400, 2^401): no error-free step can
    overflow or underflow on such operands, so they need no scaling."""
    field = (_bits(x) >> 52) & 0x7FF
    return (field >= 623) & (field <= 1423)


@numba.njit(inline="always", error_model="numpy")
def _fast(op, x, y, z):
    """(ok, r, t): op's float64 result r and the sign of the exact remainder in t, for plain
    operands whose result is not an exact zero; ok False sends the element the general way.
    op is a constant where the kernels inline this: the branches on it fold away, and what is
    left has no branches the vectoriser cannot turn into selects."""
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
        t = -_fma(r, y, -x) * y  # the remainder x - r*y (exact), times y for its sign
    elif op == ac.FMA:
        ok &= _plain(y) & _plain(z)
        uh, ul = _two_prod(x, y)
        th, tl = _two_sum(z, uh)
        s, st = _two_sum(tl, ul)
        v = _float(_odd_bits(s, st)) if s != 0.0 else 0.0
        r, t = _two_sum(th, v)
    else:
        ok &= x > 0.0
        r = math.sqrt(x)
        t = -_fma(r, r, -x)  # x - r*r, exact
    return ok & (r != 0.0), r, t


@numba.njit(inline="always", error_model="numpy")
def _odd_bits(r, t):
    """The bits of r + t rounded to odd (r a normal float64, |t| at most half its ulp)."""
    b = _bits(r)
    if t != 0.0:
        b = b | 1 if (t > 0.0) == (r > 0.0) else (b - 1) | 1
    return b


@numba.njit(inline="always", error_model="numpy")
def _round_bits(bits, mode, up, unsigned, fast):
    """(ok, value, inexact): the float64 with these bits (a result rounded to odd) rounded
    into the format, worked on the float64's own bits (its significand cut by ``fast[0]``
    bits, a carry running into its exponent); ok False where that is not the answer: the
    result is tiny for the format, overflows it, or is negative in an unsigned format.
    fast = (bits cut, the lowest float64 exponent field of the format's normal values, the
    bits of its largest finite value); up: stochastic rounding's draw."""
    shift, low, top = fast
    mag = bits & _MAGNITUDE
    neg = bits < 0
    q = mag >> shift
    rem = mag - (q << shift)
    if shift > 0:
        q = _increment(q, rem, (np.int64(1) << shift) >> 1, mode, neg, up)
    rounded = q << shift
    ok = ((mag >> 52) >= low) & (rounded <= top) & ~(neg & unsigned)
    return ok, _float(rounded | (bits & ~_MAGNITUDE)), rem != 0


@numba.njit(inline="always", error_model="numpy")
def _draw(bits, ui, mode, fast):
    """Stochastic rounding's draw for a result with these bits: ui below the fraction of an
    ulp cut off."""
    shift = fast[0]
    return mode == fc.RSTOCH and ui < math.ldexp(float(bits & ((np.int64(1) << shift) - 1)), -shift)


@numba.njit(inline="always", error_model="numpy")
def _general(op, x, y, z, ui, plan, slot_values, ftz):
    """(value, refused, flags) by ``_core``'s general path (scaled operands, any result)."""
    kind, neg, mag, exp, flags = _apply(op, x, y, z, plan[fc.P_MODE])
    code, slot, flags = _round(kind, neg, mag, exp, flags, ui, plan, ftz)
    return _value_of(code, slot, plan, slot_values), _refused(slot, plan), flags


@numba.njit(inline="always", error_model="numpy")
def _one(op, x, y, z, ui, plan, fast, slot_values, ftz):
    """(value, refused, flags) of one operation: the fast path where the operands need no
    scaling and the result is a normal value of the format, else the general one."""
    ok, r, t = _fast(op, x, y, z)
    if ok:
        bits = _odd_bits(r, t)
        mode = plan[fc.P_MODE]
        up = _draw(bits, ui, mode, fast)
        done, value, inexact = _round_bits(bits, mode, up, plan[fc.P_SIGN] == 0, fast)
        if done:
            return value, False, np.int64(inexact)
        sig = (bits & _MANTISSA) | _HIDDEN
        e = ((bits >> 52) & 0x7FF) - 1023
        code, slot, flags = _round_inline(fc.KIND_FINITE, bits < 0, sig, e, 0, ui, plan, ftz)
        return _value_of(code, slot, plan, slot_values), _refused(slot, plan), flags
    return _general(op, x, y, z, ui, plan, slot_values, ftz)


@numba.njit(cache=True, error_model="numpy")
def _one_call(op, x, y, z, ui, plan, fast, slot_values, ftz):
    """_one as a call: compiled once for every kernel that falls back to it."""
    return _one(op, x, y, z, ui, plan, fast, slot_values, ftz)


#: The elementwise kernel works in blocks of this many elements: a vectorised pass over the
#: block, then the general path for the few elements that pass could not finish.
BLOCK = 512


@numba.njit(inline="always", error_model="numpy")
def _block(op, x, y, z, out, special, mode, unsigned, fast, daz, min_normal):
    """The vectorised pass over one block, op a constant: every value the fast path finds,
    and special[j] where it finds none. Returns (inexact results found, specials)."""
    inexact = specials = 0
    for j in range(out.size):
        xj, yj, zj = np.float64(x[j]), np.float64(y[j]), np.float64(z[j])
        ok, r, t = _fast(op, xj, yj, zj)
        if daz:  # an operand below the format's normals is a zero: the general path's
            tiny = (abs(xj) < min_normal) & (xj != 0.0)
            tiny |= (abs(yj) < min_normal) & (yj != 0.0)
            tiny |= (abs(zj) < min_normal) & (zj != 0.0)
            ok &= ~tiny
        bits = _odd_bits(r, t)
        done, value, inexact_j = _round_bits(bits, mode, False, unsigned, fast)
        miss = ~(ok & done)
        out[j] = value
        special[j] = miss
        inexact += inexact_j & ~miss
        specials += miss
    return inexact, specials


@numba.njit(inline="always", error_model="numpy")
def _window(x, start, stop, n, filled):
    """x[start:stop], or as many copies of x's one value (``filled``) for a broadcast."""
    return x[start:stop] if x.size == n else filled[: stop - start]


@numba.njit(nogil=True, cache=True, error_model="numpy")
def elementwise(op, a, b, c, out, plan, fast, slot_values, u, ftz, daz, min_normal):
    """out[i] = op(a[i], b[i], c[i]) rounded into plan's format (an operand of one value is
    used for every i; u holds one uniform per element for stochastic rounding).

    Returns (how many results the plan refused, and the count of each flag: inexact,
    underflow, overflow, invalid, divide-by-zero).
    """
    n = out.size
    mode, unsigned = plan[fc.P_MODE], plan[fc.P_SIGN] == 0
    counts = np.zeros(6, dtype=np.int64)
    special = np.ones(BLOCK, dtype=np.bool_)
    fill_a = np.full(BLOCK, a[0] if a.size else 0, dtype=a.dtype)
    fill_b = np.full(BLOCK, b[0] if b.size else 0, dtype=b.dtype)
    fill_c = np.full(BLOCK, c[0] if c.size else 0, dtype=c.dtype)
    for start in range(0, n, BLOCK):
        stop = min(start + BLOCK, n)
        x = _window(a, start, stop, n, fill_a)
        y = _window(b, start, stop, n, fill_b)
        z = _window(c, start, stop, n, fill_c)
        o = out[start:stop]
        found = stop - start  # stochastic rounding: every element the scalar way
        if mode != fc.RSTOCH:
            if op == ac.ADD:
                inexact, found = _block(
                    ac.ADD, x, y, z, o, special, mode, unsigned, fast, daz, min_normal
                )
            elif op == ac.SUB:
                inexact, found = _block(
                    ac.SUB, x, y, z, o, special, mode, unsigned, fast, daz, min_normal
                )
            elif op == ac.MUL:
                inexact, found = _block(
                    ac.MUL, x, y, z, o, special, mode, unsigned, fast, daz, min_normal
                )
            elif op == ac.DIV:
                inexact, found = _block(
                    ac.DIV, x, y, z, o, special, mode, unsigned, fast, daz, min_normal
                )
            elif op == ac.FMA:
                inexact, found = _block(
                    ac.FMA, x, y, z, o, special, mode, unsigned, fast, daz, min_normal
                )
            else:
                inexact, found = _block(
                    ac.SQRT, x, y, z, o, special, mode, unsigned, fast, daz, min_normal
                )
            counts[1] += inexact
        if found == 0:
            continue
        for j in range(stop - start):
            if found < stop - start and not special[j]:
                continue
            xj, yj, zj = np.float64(x[j]), np.float64(y[j]), np.float64(z[j])
            if daz:
                xj, yj, zj = _daz(xj, min_normal), _daz(yj, min_normal), _daz(zj, min_normal)
            ui = u[start + j] if u.size == n else 0.0
            o[j], no, flags = _one_call(op, xj, yj, zj, ui, plan, fast, slot_values, ftz)
            counts[0] += no
            for k in range(5):
                counts[k + 1] += (flags >> k) & 1
    return counts[0], counts[1], counts[2], counts[3], counts[4], counts[5]


# -- sums: the running sum stays in the format, each step a value of it ----------------------------
@numba.njit(inline="always", error_model="numpy")
def _add_fast(acc, x, ui, mode, unsigned, fast):
    """(done, acc + x rounded into the format, inexact) where the fast path finds it; the
    running sum's latency is its speed, so the exact remainder is worked out only where the
    float64 sum's bits below the format's last place are 0 or a tie, the only cases in which
    rounding depends on it (stochastic rounding always uses it). Scalars rather than the
    plan: numba copies a tuple into every inlined call."""
    r = acc + x  # RN(acc + x): an infinity or NaN here fails the checks of _round_bits
    bits = _bits(r)
    low = bits & ((np.int64(1) << fast[0]) - 1)
    up, plain = False, True
    if low == 0 or low == (np.int64(1) << fast[0]) >> 1 or mode == fc.RSTOCH:
        plain = _plain(acc) & _plain(x)
        r, t = _two_sum(acc, x)
        bits = _odd_bits(r, t)
        up = _draw(bits, ui, mode, fast)
    done, value, inexact = _round_bits(bits, mode, up, unsigned, fast)
    return done & plain, value, np.int64(inexact)  # a zero sum is never done


@numba.njit(cache=True, error_model="numpy")
def _add(acc, x, ui, plan, fast, slot_values, ftz, daz, min_normal):
    """(acc + x rounded into the format, refused, flags); with daz, an operand below
    min_normal is read as a zero of its sign."""
    if daz:
        acc, x = _daz(acc, min_normal), _daz(x, min_normal)
    done, value, inexact = _add_fast(acc, x, ui, plan[fc.P_MODE], plan[fc.P_SIGN] == 0, fast)
    if done:
        return value, False, inexact
    return _one(ac.ADD, acc, x, 0.0, ui, plan, fast, slot_values, ftz)


@numba.njit(inline="always", error_model="numpy")
def _step(acc, x, ui, mode, unsigned, fast, plan, slot_values, ftz, daz, min_normal):
    """(acc + x rounded, refused, flags): the fast path inlined, ``_add`` called where it
    cannot finish."""
    done, value, flags = _add_fast(acc, x, ui, mode, unsigned, fast)
    refused = False
    if daz or not done:
        value, refused, flags = _add(acc, x, ui, plan, fast, slot_values, ftz, daz, min_normal)
    return value, refused, flags


@numba.njit(nogil=True, cache=True, error_model="numpy")
def sequential(x, plan, fast, slot_values, u, ftz, daz, min_normal, kahan, running):
    """Each row of x summed left to right, every addition rounded (Kahan's compensated sum
    when kahan: every operation of it rounded too). running (rows, n) receives the partial
    sums when it has that shape. ftz, daz: as the elementwise kernel takes them.

    Returns (sums, where each row's sum stagnated: the first of the last terms, at least two
    and not all zero, none of which changed it (-1 where there is no such run), refused count,
    flag counts).
    """
    rows, n = x.shape
    keep = running.shape[0] == rows
    stochastic = u.size > 0
    mode, unsigned = plan[fc.P_MODE], plan[fc.P_SIGN] == 0
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
                u1 = u[k] if stochastic else 0.0
                u2 = u[k + 1] if stochastic else 0.0
                u3 = u[k + 2] if stochastic else 0.0
                u4 = u[k + 3] if stochastic else 0.0
                y, r1, f1 = _step(
                    xi, -comp, u1, mode, unsigned, fast, plan, slot_values, ftz, daz, min_normal
                )
                t, r2, f2 = _step(
                    acc, y, u2, mode, unsigned, fast, plan, slot_values, ftz, daz, min_normal
                )
                d, r3, f3 = _step(
                    t, -acc, u3, mode, unsigned, fast, plan, slot_values, ftz, daz, min_normal
                )
                comp, r4, f4 = _step(
                    d, -y, u4, mode, unsigned, fast, plan, slot_values, ftz, daz, min_normal
                )
                acc = t
                k += 4
                refused += r1 + r2 + r3 + r4
                flags = f1 | f2 | f3 | f4
            else:
                ui = u[k] if stochastic else 0.0
                done, acc_fast, flags = _add_fast(acc, xi, ui, mode, unsigned, fast)
                if done and not daz:
                    acc = acc_fast
                else:
                    acc, no, flags = _add(
                        acc, xi, ui, plan, fast, slot_values, ftz, daz, min_normal
                    )
                    refused += no
                k += 1
            inexact += flags & 1
            if flags > 1:
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


@numba.njit(inline="always", error_model="numpy")
def _tally(acc, x, u, state, plan, fast, slot_values, ftz, daz, min_normal):
    """acc + x by ``_add``, with the next of u's draws (stochastic rounding), counted into
    state: [draws taken, refused, inexact, underflow, overflow, invalid, divide-by-zero]."""
    ui = 0.0
    if u.size:
        ui = u[state[0]]
        state[0] += 1
    value, no, flags = _add(acc, x, ui, plan, fast, slot_values, ftz, daz, min_normal)
    state[1] += no
    for k in range(5):
        state[k + 2] += (flags >> k) & 1
    return value


@numba.njit(inline="always", error_model="numpy")
def _numpy_leaf(x, lo, n, u, state, plan, fast, slot_values, ftz, daz, min_normal):
    """The sum of x[lo:lo + n], n <= 128, as numpy's pairwise sum adds such a block: below 8
    terms left to right; else eight interleaved running sums combined as
    ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7)), then the rest left to right."""
    if n < 8:
        acc = -0.0
        for i in range(lo, lo + n):
            acc = _tally(acc, x[i], u, state, plan, fast, slot_values, ftz, daz, min_normal)
        return acc
    r = np.empty(8)
    for j in range(8):
        r[j] = np.float64(x[lo + j])
    i = 8
    while i < n - (n % 8):
        for j in range(8):
            xj = np.float64(x[lo + i + j])
            r[j] = _tally(r[j], xj, u, state, plan, fast, slot_values, ftz, daz, min_normal)
        i += 8
    for width in (1, 2, 4):  # the pairs (0,1) (2,3) (4,5) (6,7), then (0,2) (4,6), then (0,4)
        for j in range(0, 8, 2 * width):
            rw = r[j + width]
            r[j] = _tally(r[j], rw, u, state, plan, fast, slot_values, ftz, daz, min_normal)
    acc = r[0]
    for k in range(i, n):
        xk = np.float64(x[lo + k])
        acc = _tally(acc, xk, u, state, plan, fast, slot_values, ftz, daz, min_normal)
    return acc


@numba.njit(nogil=True, cache=True, error_model="numpy")
def numpy_order(x, plan, fast, slot_values, u, ftz, daz, min_normal):
    """Each row summed in the order of numpy's pairwise sum (numpy/core/src/umath/
    loops_utils.h.src): blocks of up to 128 terms as ``_numpy_leaf`` adds them; a longer
    span split in two halves (the first a multiple of 8), each summed that way, then added.
    The recursion runs on an explicit stack (numba's disk cache cannot hold a recursive
    function). u: draws for stochastic rounding (at most 2 per term), or empty.

    Returns (sums, refused count, flag counts)."""
    rows, n = x.shape
    sums = np.empty(rows)
    state = np.zeros(7, dtype=np.int64)
    depth = 2 * 64 + 2
    los = np.empty(depth, dtype=np.int64)
    lens = np.empty(depth, dtype=np.int64)
    stage = np.empty(depth, dtype=np.int64)  # 0: new, 1: left half summed, 2: both summed
    values = np.empty(depth)
    for row in range(rows):
        xr = x[row]
        top, nv = 0, 0
        los[0], lens[0], stage[0] = 0, n, 0
        while top >= 0:
            lo, m = los[top], lens[top]
            if m <= 128:
                values[nv] = _numpy_leaf(
                    xr, lo, m, u, state, plan, fast, slot_values, ftz, daz, min_normal
                )
                nv += 1
                top -= 1
                continue
            half = m // 2
            half -= half % 8
            if stage[top] < 2:
                first = stage[top] == 0
                stage[top] += 1
                top += 1
                los[top] = lo if first else lo + half
                lens[top] = half if first else m - half
                stage[top] = 0
            else:
                nv -= 1
                values[nv - 1] = _tally(
                    values[nv - 1],
                    values[nv],
                    u,
                    state,
                    plan,
                    fast,
                    slot_values,
                    ftz,
                    daz,
                    min_normal,
                )
                top -= 1
        sums[row] = values[0]
    return sums, state[1], (state[2], state[3], state[4], state[5], state[6])
