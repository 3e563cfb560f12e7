"""The numba kernels of ``numfmt.arith.matmul``: one output element's whole accumulation in
compiled code, rows of the output shared among threads.

Two kernels:

* ``fused``: the tensor core's way. K is cut into groups; each group's exact products and the
  running accumulator are aligned to the largest exponent among them (an operand's exponent
  is its format's, a subnormal's the format's smallest, a zero's -126, as MMA-Sim reads
  them), cut to ``bits`` fractional bits by the term rounding, summed exactly, and the sum
  rounded into the accumulator.
* ``columns``: one rounding per operation: products exact (fused multiply-add) or rounded
  into a format, sums rounded into the accumulator in the order asked (sequential, Kahan's
  compensated sum, or tiles summed from zero then added), vectorised across output columns
  as ``fused`` is: each operation's fast path for a block of columns at once, the general
  path for the few it cannot finish.
* ``general``: the same one output element at a time, every operation through the general
  path's call; adjacent pairs summed level by level (``pairwise``) go this way, and the
  tests check ``columns`` against it bit for bit.

Both promote: every ``promote`` terms the accumulator's partial sum, times the product of the
block's scales where they are not powers of two, is added into an outer accumulator by one
fused multiply-add, and the inner one starts again from zero.

Stochastic rounding draws come from a counter-based hash (splitmix64) of the seed and the
position of the rounding, so the draws, and the results, do not depend on the threads.
"""

import math

import numba
import numpy as np

from numfmt.arith import _core as ac
from numfmt.arith._jit import (
    _bits,
    _draw,
    _fast,
    _float,
    _odd_bits,
    _one,
    _one_call,
    _plain,
    _round_bits,
    _two_prod,
)
from numfmt.formats import _core as fc

SEQUENTIAL, KAHAN, TILE, PAIRWISE = 0, 1, 2, 3
TRUNC, NEAREST, FLOOR, CEIL = 0, 1, 2, 3
EXACT, IN_FLOAT64, ROUNDED = 0, 1, 2  # how columns forms its products
_ZERO_EXPONENT = -126  # what MMA-Sim gives a zero, in any format


@numba.njit(inline="always", error_model="numpy")
def _uniform(seed, i, j, step):
    """A uniform in [0, 1) from the seed and the rounding's position (splitmix64's mix)."""
    z = np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
    z ^= np.uint64(i) * np.uint64(0xBF58476D1CE4E5B9)
    z ^= np.uint64(j) * np.uint64(0x94D049BB133111EB)
    z += np.uint64(step) * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return float(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@numba.njit(inline="always", error_model="numpy")
def _cut(x, how):
    if how == TRUNC:  # numpy's, which stay floats (math's give integers in numba)
        return np.trunc(x)
    if how == NEAREST:
        return np.rint(x)
    if how == FLOOR:
        return np.floor(x)
    return np.ceil(x)


@numba.njit(inline="always", error_model="numpy")
def _rounded(x, u, acc):
    """x rounded into a format: acc = (plan, fast, slot values, ftz)."""
    v, refused, _ = _one_call(ac.MUL, x, 1.0, 0.0, u, acc[0], acc[1], acc[2], acc[3])
    return v, refused


@numba.njit(inline="always", error_model="numpy")
def _power(e):
    """2^e for -1022 <= e <= 1023, from its bits."""
    return _float(np.int64(e + 1023) << 52)


@numba.njit(inline="always", error_model="numpy")
def _top(x, emin):
    """The accumulator's exponent as an aligner reads it, from its bits: -126 for a zero
    (MMA-Sim's reading), the format's smallest for a subnormal."""
    e = max(((_bits(x) >> 52) & 0x7FF) - 1023, emin)
    return e if x != 0.0 else _ZERO_EXPONENT


COLS = 64  # the output columns worked on together: one group's slice of b stays in cache


@numba.njit(nogil=True, cache=True, error_model="numpy", fastmath={"reassoc"})
def fused(a, b, ea, eb, sa, sb, out, group, bits, how, emin, promote, acc, outer, seed, i0, i1):
    """out[i, j] for rows i0..i1: a (M, K) and b (K, N) the operands' values, ea and eb their
    exponents; sa (M, blocks), sb (N, blocks) the promotion scales. Returns how many
    roundings the accumulator's overflow policy refused.

    Vectorised across a block of output columns: for each group, the largest exponent, then
    the cut terms summed (whole numbers, exact in float64 in any order: hence fastmath's
    reassociation, which lets the sums vectorise), then the rounding into the accumulator on
    the float64's own bits, with the general path for what that cannot finish."""
    k_len, n_cols = b.shape
    groups = k_len // group
    per_block = promote // group if promote > 0 else groups
    plan, fast = acc[0], acc[1]
    mode, unsigned = plan[fc.P_MODE], plan[fc.P_SIGN] == 0
    stochastic = mode == fc.RSTOCH
    outer_stochastic = outer[0][fc.P_MODE] == fc.RSTOCH
    refused = 0
    m = i1 - i0
    part = np.zeros((m, COLS))
    total = np.zeros((m, COLS))
    top = np.empty(COLS, dtype=np.int32)
    up = np.empty(COLS)
    s = np.empty(COLS)
    for j0 in range(0, n_cols, COLS):
        w = min(COLS, n_cols - j0)
        part[:] = 0.0
        total[:] = 0.0
        for g in range(groups):  # a group's slice of b stays in cache for every row
            k0 = g * group
            for r in range(m):
                i = i0 + r
                p = part[r]
                for c in range(w):
                    top[c] = _top(p[c], emin)
                for k in range(k0, k0 + group):
                    e = np.int32(ea[i, k])
                    row_e = eb[k, j0 : j0 + w]
                    for c in range(w):
                        t = e + np.int32(row_e[c])
                        top[c] = t if t > top[c] else top[c]
                for c in range(w):
                    up[c] = _power(bits - top[c])
                    s[c] = _cut(p[c] * up[c], how)
                if how == TRUNC:
                    for k in range(k0, k0 + group):
                        x = np.float64(a[i, k])
                        row = b[k, j0 : j0 + w]
                        for c in range(w):
                            s[c] += np.trunc(x * np.float64(row[c]) * up[c])
                else:
                    for k in range(k0, k0 + group):
                        x = np.float64(a[i, k])
                        row = b[k, j0 : j0 + w]
                        for c in range(w):
                            s[c] += _cut(x * np.float64(row[c]) * up[c], how)
                for c in range(w):
                    v = s[c] * _power(top[c] - bits)
                    done, value, _ = _round_bits(_bits(v), mode, False, unsigned, fast)
                    if stochastic or not done:
                        if v != v or math.isinf(v):  # an infinity among the terms
                            v = p[c]
                            for k in range(k0, k0 + group):
                                v += np.float64(a[i, k]) * np.float64(b[k, j0 + c])
                        u = _uniform(seed, i, j0 + c, g) if stochastic else 0.0
                        value, no = _rounded(v, u, acc)
                        refused += no
                    p[c] = value
                if promote > 0 and ((g + 1) % per_block == 0 or g == groups - 1):
                    blk = g // per_block
                    t_row = total[r]
                    for c in range(w):
                        u = _uniform(seed + 1, i, j0 + c, blk) if outer_stochastic else 0.0
                        scale = sa[i, blk] * sb[j0 + c, blk]
                        t_row[c], _, _ = _one(
                            ac.FMA, p[c], scale, t_row[c], u, outer[0], outer[1], outer[2], outer[3]
                        )
                        p[c] = 0.0
        for r in range(m):
            for c in range(w):
                out[i0 + r, j0 + c] = total[r, c] if promote > 0 else part[r, c]
    return refused


@numba.njit(inline="always", error_model="numpy")
def _lane(op, x, y, z, ui, mode, unsigned, fast):
    """(finished, value) of op(x, y, z) rounded by the fast path alone. For a sum, also the
    cases a stalled accumulator makes common (Kahan's steps meet them at every term): one
    term zero (the other, rounded), and two terms that cancel (a zero, negative only when
    rounding down), which the fast path would send the general way."""
    good, r, t = _fast(op, x, y, z)
    cancel = False
    if op == ac.ADD:  # selects, not branches: the loop still vectorises
        x_alone = (y == 0.0) & _plain(x)
        y_alone = (x == 0.0) & _plain(y)
        cancel = (x == -y) & _plain(x)
        good = good | x_alone | y_alone
        r = x if x_alone else (y if y_alone else r)
        t = 0.0 if x_alone | y_alone else t
    bits = _odd_bits(r, t)
    up = _draw(bits, ui, mode, fast) if mode == fc.RSTOCH else False
    done, value, _ = _round_bits(bits, mode, up, unsigned, fast)
    if cancel:
        value = -0.0 if mode == fc.RDOWN else 0.0
    return (good & done) | cancel, value


@numba.njit(inline="always", error_model="numpy")
def _lanes(op, x, y, z, u, out, ok, w, args):
    """out[c] = op(x[c], y[c], z[c]) rounded into a format for c < w, the fast path for all
    (no branch in the loop: it vectorises), then the general path for those it could not
    finish; the refusals counted. args = (plan, fast, slot values, ftz)."""
    mode, fast = args[0][fc.P_MODE], args[1]
    unsigned = args[0][fc.P_SIGN] == 0
    left = 0
    if mode == fc.RNE and not unsigned:  # the common case: constants the loop folds
        for c in range(w):
            ok[c], out[c] = _lane(op, x[c], y[c], z[c], 0.0, fc.RNE, False, fast)
            left += not ok[c]
    else:
        for c in range(w):
            ok[c], out[c] = _lane(op, x[c], y[c], z[c], u[c], mode, unsigned, fast)
            left += not ok[c]
    refused = 0
    if left:
        for c in range(w):
            if not ok[c]:
                out[c], no, _ = _one_call(op, x[c], y[c], z[c], u[c], *args)
                refused += no
    return refused


@numba.njit(cache=True, error_model="numpy")
def _fma(x, y, z, u, out, ok, w, args):
    """out[c] = x[c] * y[c] + z[c] rounded once, for c < w; the refusals counted. One call a
    step for a block of columns: compiled once, not inlined at every use."""
    return _lanes(ac.FMA, x, y, z, u, out, ok, w, args)


@numba.njit(cache=True, error_model="numpy")
def _sum(x, y, u, out, ok, w, args):
    """out[c] = x[c] + y[c] rounded, for c < w; the refusals counted."""
    return _lanes(ac.ADD, x, y, y, u, out, ok, w, args)


@numba.njit(cache=True, error_model="numpy")
def _product(x, y, u, out, ok, w, args):
    """out[c] = x[c] * y[c] rounded, for c < w; the refusals counted."""
    return _lanes(ac.MUL, x, y, y, u, out, ok, w, args)


@numba.njit(inline="always", error_model="numpy")
def _fill(u, seed, i, j0, step, w, stochastic):
    if stochastic:
        for c in range(w):
            u[c] = _uniform(seed, i, j0 + c, step)


@numba.njit(inline="always", error_model="numpy")
def _rows(n):
    return np.zeros(n)


#: The output columns ``columns`` works on together: each step a call per operation for all of
#: them, whose cost (numba's reference counting of the arrays passed) is spread over many.
WIDE = 512


@numba.njit(nogil=True, cache=True, error_model="numpy")
def columns(a, b, sa, sb, out, order, tile, promote, prod, kind, acc, outer, seed, i0, i1):
    """``general``'s results for the orders sequential, kahan and tile, vectorised across
    blocks of WIDE output columns: a (M, K), b (K, N) (columns contiguous). kind: EXACT
    (products exact, each added by a fused multiply-add), IN_FLOAT64 (the same, where float64
    holds every product exactly: a plain multiply, then a rounded addition) or ROUNDED
    (products rounded into prod's format). Returns how many roundings an overflow policy
    refused."""
    k_len, n_cols = b.shape
    block = promote if promote > 0 else k_len
    stochastic = acc[0][fc.P_MODE] == fc.RSTOCH or prod[0][fc.P_MODE] == fc.RSTOCH
    outer_stochastic = outer[0][fc.P_MODE] == fc.RSTOCH
    refused = 0
    # one contiguous array each (the calls below are compiled for contiguous arrays, and
    # vectorise only on them): b's row too is copied into one a step
    part, comp, run, total, xs = _rows(WIDE), _rows(WIDE), _rows(WIDE), _rows(WIDE), _rows(WIDE)
    term, y, t, d, nxt = _rows(WIDE), _rows(WIDE), _rows(WIDE), _rows(WIDE), _rows(WIDE)
    u, u2, scale, row = _rows(WIDE), _rows(WIDE), _rows(WIDE), _rows(WIDE)
    ok = np.empty(WIDE, dtype=np.bool_)
    for i in range(i0, i1):
        for j0 in range(0, n_cols, WIDE):
            w = min(WIDE, n_cols - j0)
            total[:] = 0.0
            step = 0
            for k0 in range(0, k_len, block):
                k1 = min(k0 + block, k_len)
                part[:] = 0.0
                comp[:] = 0.0
                run[:] = 0.0
                for k in range(k0, k1):
                    _fill(u, seed, i, j0, step, w, stochastic)
                    _fill(u2, seed + 2, i, j0, step, w, stochastic)
                    step += 1
                    x = np.float64(a[i, k])
                    row[:w] = b[k, j0 : j0 + w]
                    if kind == ROUNDED:  # each product rounded into its format first
                        xs[:] = x
                        refused += _product(xs, row, u2, term, ok, w, prod)
                    elif kind == IN_FLOAT64:
                        for c in range(w):
                            term[c] = x * row[c]
                    else:
                        xs[:] = x
                    fused_step = kind == EXACT
                    if order == KAHAN:  # y = a*b - comp, rounded once
                        for c in range(w):
                            nxt[c] = -comp[c]
                        if fused_step:
                            refused += _fma(xs, row, nxt, u2, y, ok, w, acc)
                        else:
                            draw = u2 if kind == IN_FLOAT64 else u  # the FMA's, or the sum's
                            refused += _sum(term, nxt, draw, y, ok, w, acc)
                        refused += _sum(part, y, u, t, ok, w, acc)
                        for c in range(w):
                            nxt[c] = -part[c]
                        refused += _sum(t, nxt, u, d, ok, w, acc)
                        for c in range(w):
                            nxt[c] = -y[c]
                        refused += _sum(d, nxt, u, comp, ok, w, acc)
                        part, t = t, part
                    else:
                        if fused_step:
                            refused += _fma(xs, row, run, u, nxt, ok, w, acc)
                        else:
                            refused += _sum(run, term, u, nxt, ok, w, acc)
                        run, nxt = nxt, run
                        if order == TILE and ((k - k0 + 1) % tile == 0 or k == k1 - 1):
                            refused += _sum(part, run, u2, nxt, ok, w, acc)
                            part, nxt = nxt, part
                            run[:] = 0.0
                if order == SEQUENTIAL:
                    part[:w] = run[:w]
                if promote > 0:
                    blk = k0 // block
                    _fill(u, seed + 1, i, j0, blk, w, outer_stochastic)
                    for c in range(w):
                        scale[c] = sa[i, blk] * sb[j0 + c, blk]
                    _fma(part, scale, total, u, nxt, ok, w, outer)
                    total[:w] = nxt[:w]
                else:
                    total[:w] = part[:w]
            out[i, j0 : j0 + w] = total[:w]
    return refused


@numba.njit(inline="always", error_model="numpy")
def _term(x, y, prod, exact, u):
    """x * y, exact (float64 holds it: checked by the caller) or rounded into prod's format."""
    if exact:
        return x * y
    v, _, _ = _one_call(ac.MUL, x, y, 0.0, u, prod[0], prod[1], prod[2], prod[3])
    return v


@numba.njit(inline="always", error_model="numpy")
def _add(x, y, u, acc):
    v, no, _ = _one_call(ac.ADD, x, y, 0.0, u, acc[0], acc[1], acc[2], acc[3])
    return v, no


@numba.njit(nogil=True, cache=True, error_model="numpy")
def general(a, b, sa, sb, out, order, tile, promote, prod, exact, acc, outer, seed, i0, i1):
    """out[i, j] for rows i0..i1, every operation rounded once: a (M, K), b (N, K). Returns
    how many roundings an overflow policy refused."""
    n_cols, k_len = b.shape
    block = promote if promote > 0 else k_len
    stochastic = acc[0][fc.P_MODE] == fc.RSTOCH or prod[0][fc.P_MODE] == fc.RSTOCH
    buf = np.empty(block)
    refused = 0
    for i in range(i0, i1):
        for j in range(n_cols):
            total = 0.0
            step = 0
            for k0 in range(0, k_len, block):
                k1 = min(k0 + block, k_len)
                part, comp, tile_sum = 0.0, 0.0, 0.0
                for k in range(k0, k1):
                    u = _uniform(seed, i, j, step) if stochastic else 0.0
                    u2 = _uniform(seed + 2, i, j, step) if stochastic else 0.0
                    step += 1
                    if order == PAIRWISE:
                        buf[k - k0] = _term(a[i, k], b[j, k], prod, exact, u2)
                    elif order == KAHAN:
                        if exact:  # y = a*b - comp, rounded once
                            y, no, _ = _one_call(ac.FMA, a[i, k], b[j, k], -comp, u2, *acc)
                        else:
                            y, no = _add(_term(a[i, k], b[j, k], prod, exact, u2), -comp, u, acc)
                        t, no2 = _add(part, y, u, acc)
                        d, no3 = _add(t, -part, u, acc)
                        comp, no4 = _add(d, -y, u, acc)
                        part = t
                        refused += no + no2 + no3 + no4
                    else:
                        running = tile_sum if order == TILE else part
                        if exact:
                            running, no, _ = _one_call(ac.FMA, a[i, k], b[j, k], running, u, *acc)
                        else:
                            running, no = _add(
                                running, _term(a[i, k], b[j, k], prod, exact, u2), u, acc
                            )
                        refused += no
                        if order == TILE:
                            tile_sum = running
                            if (k - k0 + 1) % tile == 0 or k == k1 - 1:
                                part, no = _add(part, tile_sum, u2, acc)
                                refused += no
                                tile_sum = 0.0
                        else:
                            part = running
                if order == PAIRWISE:
                    n = k1 - k0
                    if n == 1:
                        buf[0], no = _rounded(buf[0], 0.0, acc)
                        refused += no
                    while n > 1:
                        half = n // 2
                        for q in range(half):
                            u = _uniform(seed + 3, i, j, step) if stochastic else 0.0
                            step += 1
                            buf[q], no = _add(buf[2 * q], buf[2 * q + 1], u, acc)
                            refused += no
                        if n % 2:
                            buf[half] = buf[n - 1]
                        n = half + n % 2
                    part = buf[0] if k1 > k0 else 0.0
                if promote > 0:
                    blk = k0 // block
                    u = _uniform(seed + 1, i, j, blk) if outer[0][fc.P_MODE] == fc.RSTOCH else 0.0
                    total, _, _ = _one_call(ac.FMA, part, sa[i, blk] * sb[j, blk], total, u, *outer)
                else:
                    total = part
            out[i, j] = total
    return refused


@numba.njit(nogil=True, cache=True, error_model="numpy")
def reference(a, b, out, i0, i1):
    """out[i, j] = the dot product of a[i] and b[j] accurate as if computed in twice float64's
    precision, then rounded to float64 (Ogita, Rump and Oishi's Dot2: TwoProd and TwoSum)."""
    n_cols, k_len = b.shape
    for i in range(i0, i1):
        for j in range(n_cols):
            s, c = 0.0, 0.0
            for k in range(k_len):
                p, e = _two_prod(a[i, k], b[j, k])
                t = s + p
                z = t - s
                c += (s - (t - z)) + (p - z) + e
                s = t
            out[i, j] = s + c
    return 0
