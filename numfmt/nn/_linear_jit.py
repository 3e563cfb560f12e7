"""numba kernels for a linear layer whose weight is held as codes; imported only by
``numfmt.nn.packed``.

The weight is ``w[n, k] = (q[n, k] - z[n, g]) * s[n, g] + m[n, g]`` with ``g = k // gsize``
(z and m absent where the scheme has none: empty arrays) for an int grid, and
``lv[q[n, k]] * s[n, g]`` for a float or codebook grid whose levels are lv. Codes of 8 bits
are one byte each; 4-bit codes are two to a byte, the first in the low nibble
(``low_first``), a row of K codes in K / 2 bytes. The products take the codes as they are, in
float32: each group's sum of ``x * (q - z)`` (integers of at most 9 bits, exact in float32)
or of ``x * lv[q]`` is accumulated in float32 and scaled once, so the result differs from
multiplying by the decoded weight only by the order and rounding of float32 additions (the
tests bound it). Each output is computed by one thread in a fixed order: the result does not
depend on the number of threads.

Integer loads go through int32 before they become float32: numba widens integers to int64,
and int64 -> float32 has no vector instruction below AVX-512DQ, which would keep the loops
scalar. ``fastmath`` here allows reassociation and fused multiply-adds only (what lets a sum
run in SIMD lanes), not the assumption that there are no NaNs or infinities.
"""

import numba
import numpy as np

from numfmt._numba import serial_twin

_FAST = {"reassoc", "contract"}


#: Output rows computed together (each input element loaded once for all of them).
ROWS = 4


@numba.njit(fastmath=_FAST, inline="always")
def _dot_int8(x, q0, q1, q2, q3, z0, z1, z2, z3):
    """Four rows' sums of x * (q - z) over one group."""
    a0 = np.float32(0)
    a1 = np.float32(0)
    a2 = np.float32(0)
    a3 = np.float32(0)
    for k in range(x.size):
        v = x[k]
        a0 += v * np.float32(np.int32(q0[k]) - z0)
        a1 += v * np.float32(np.int32(q1[k]) - z1)
        a2 += v * np.float32(np.int32(q2[k]) - z2)
        a3 += v * np.float32(np.int32(q3[k]) - z3)
    return a0, a1, a2, a3


@numba.njit(inline="always")
def _low(b, signed):
    """The low nibble of byte b (an int32 of the byte's sign-extended value when signed):
    shifted to the top of the int32 and back, which sign-extends it in two shifts."""
    if signed:
        return np.int32(b << np.int32(28)) >> np.int32(28)
    return b & 15


@numba.njit(inline="always")
def _high(b, signed):
    if signed:
        return b >> 4
    return (b >> 4) & 15


@numba.njit(inline="always")
def _byte(q, j, signed):
    # signed: the byte as int8 (sign-extended), so that ``>> 4`` gives the high nibble's value
    return np.int32(np.int8(q[j])) if signed else np.int32(q[j])


@numba.njit(fastmath=_FAST, inline="always")
def _dot_int4(xe, xo, q0, q1, q2, q3, z0, z1, z2, z3, signed):
    """Four rows' sums of x * (q - z) over one group of packed 4-bit codes (byte j holds code
    2j in its low nibble, 2j + 1 in its high one; xe and xo are x's even and odd elements)."""
    a0 = np.float32(0)
    a1 = np.float32(0)
    a2 = np.float32(0)
    a3 = np.float32(0)
    for j in range(xe.size):
        e = xe[j]
        o = xo[j]
        b = _byte(q0, j, signed)
        a0 += e * np.float32(_low(b, signed) - z0) + o * np.float32(_high(b, signed) - z0)
        b = _byte(q1, j, signed)
        a1 += e * np.float32(_low(b, signed) - z1) + o * np.float32(_high(b, signed) - z1)
        b = _byte(q2, j, signed)
        a2 += e * np.float32(_low(b, signed) - z2) + o * np.float32(_high(b, signed) - z2)
        b = _byte(q3, j, signed)
        a3 += e * np.float32(_low(b, signed) - z3) + o * np.float32(_high(b, signed) - z3)
    return a0, a1, a2, a3


@numba.njit(fastmath=_FAST, inline="always")
def _dot_table8(x, q0, q1, q2, q3, lv):
    """Four rows' sums of x * lv[q] over one group (a float or codebook grid's levels)."""
    a0 = np.float32(0)
    a1 = np.float32(0)
    a2 = np.float32(0)
    a3 = np.float32(0)
    for k in range(x.size):
        v = x[k]
        a0 += v * lv[np.int32(q0[k])]
        a1 += v * lv[np.int32(q1[k])]
        a2 += v * lv[np.int32(q2[k])]
        a3 += v * lv[np.int32(q3[k])]
    return a0, a1, a2, a3


@numba.njit(fastmath=_FAST, inline="always")
def _dot_table4(xe, xo, q0, q1, q2, q3, lv):
    """``_dot_table8`` for packed 4-bit codes (16 levels)."""
    a0 = np.float32(0)
    a1 = np.float32(0)
    a2 = np.float32(0)
    a3 = np.float32(0)
    for j in range(xe.size):
        e = xe[j]
        o = xo[j]
        b = np.int32(q0[j])
        a0 += e * lv[b & 15] + o * lv[(b >> 4) & 15]
        b = np.int32(q1[j])
        a1 += e * lv[b & 15] + o * lv[(b >> 4) & 15]
        b = np.int32(q2[j])
        a2 += e * lv[b & 15] + o * lv[(b >> 4) & 15]
        b = np.int32(q3[j])
        a3 += e * lv[b & 15] + o * lv[(b >> 4) & 15]
    return a0, a1, a2, a3


@numba.njit(fastmath=_FAST, cache=True)
def group_sums(x, gsize, ng):
    """Each row's sum over each group of K (what a minimum m multiplies), in float32."""
    rows, k = x.shape
    out = np.empty((rows, ng), np.float32)
    for i in range(rows):
        for g in range(ng):
            lo = g * gsize
            hi = min(lo + gsize, k)
            acc = np.float32(0)
            r = x[i, lo:hi]
            for j in range(r.size):
                acc += r[j]
            out[i, g] = acc
    return out


@numba.njit(inline="always")
def _zero(z, n, g):
    return np.int32(z[n, g]) if z.shape[0] > 0 else np.int32(0)


@numba.njit(inline="always")
def _finish(out, i, n, g, a, s, m, xsum):
    """Add one group's scaled sum (and its minimum's share) to out[i, n]."""
    out[i, n] += a * s[n, g]
    if m.shape[0] > 0:
        out[i, n] += m[n, g] * xsum[i, g]


@numba.njit(inline="always")
def _finish4(out, i, n0, n_out, g, a0, a1, a2, a3, s, m, xsum):
    """``_finish`` for the block's rows n0 .. n0 + 3 that exist."""
    _finish(out, i, n0, g, a0, s, m, xsum)
    if n0 + 1 < n_out:
        _finish(out, i, n0 + 1, g, a1, s, m, xsum)
    if n0 + 2 < n_out:
        _finish(out, i, n0 + 2, g, a2, s, m, xsum)
    if n0 + 3 < n_out:
        _finish(out, i, n0 + 3, g, a3, s, m, xsum)


@numba.njit(inline="always")
def _block(b, n_out):
    """The ``ROWS`` output rows of block b; past the last row, the last row again (computed,
    not written)."""
    n0 = b * ROWS
    return n0, min(n0 + 1, n_out - 1), min(n0 + 2, n_out - 1), min(n0 + 3, n_out - 1)


@numba.njit(parallel=True, fastmath=_FAST, cache=True)
def linear8(x, q, lv, s, z, m, xsum, gsize, out):
    """out = x @ w.T for 8-bit codes q (N, K); x (M, K) float32; lv the levels of a float
    or codebook grid (empty for an int grid); s, z, m (N, groups); xsum: ``group_sums(x)``
    where m is given. Rows of q beyond a multiple of ``ROWS`` repeat the last one (their
    results are not written)."""
    rows, k = x.shape
    n_out = q.shape[0]
    ng = s.shape[1]
    for b in numba.prange((n_out + ROWS - 1) // ROWS):
        n0, n1, n2, n3 = _block(b, n_out)
        for i in range(rows):
            for n in range(n0, min(n0 + ROWS, n_out)):
                out[i, n] = 0.0
            for g in range(ng):
                lo = g * gsize
                hi = min(lo + gsize, k)
                r, q0, q1, q2, q3 = (
                    x[i, lo:hi],
                    q[n0, lo:hi],
                    q[n1, lo:hi],
                    q[n2, lo:hi],
                    q[n3, lo:hi],
                )
                if lv.size:
                    a0, a1, a2, a3 = _dot_table8(r, q0, q1, q2, q3, lv)
                elif z.shape[0] == 0:  # symmetric: zero points the compiler sees are 0
                    a0, a1, a2, a3 = _dot_int8(r, q0, q1, q2, q3, 0, 0, 0, 0)
                else:
                    a0, a1, a2, a3 = _dot_int8(
                        r, q0, q1, q2, q3,
                        _zero(z, n0, g), _zero(z, n1, g), _zero(z, n2, g), _zero(z, n3, g),
                    )  # fmt: skip
                _finish4(out, i, n0, n_out, g, a0, a1, a2, a3, s, m, xsum)


@numba.njit(parallel=True, fastmath=_FAST, cache=True)
def linear4(xe, xo, q, signed, lv, s, z, m, xsum, gsize, out):
    """``linear8`` for 4-bit codes packed low nibble first, q (N, K / 2) bytes; xe and xo
    the even and odd columns of x (M, K / 2); gsize even."""
    rows, half = xe.shape
    n_out = q.shape[0]
    ng = s.shape[1]
    hg = gsize // 2
    for b in numba.prange((n_out + ROWS - 1) // ROWS):
        n0, n1, n2, n3 = _block(b, n_out)
        for i in range(rows):
            for n in range(n0, min(n0 + ROWS, n_out)):
                out[i, n] = 0.0
            for g in range(ng):
                lo = g * hg
                hi = min(lo + hg, half)
                z0, z1, z2, z3 = _zero(z, n0, g), _zero(z, n1, g), _zero(z, n2, g), _zero(z, n3, g)
                e, o = xe[i, lo:hi], xo[i, lo:hi]
                q0, q1, q2, q3 = q[n0, lo:hi], q[n1, lo:hi], q[n2, lo:hi], q[n3, lo:hi]
                if lv.size:
                    a0, a1, a2, a3 = _dot_table4(e, o, q0, q1, q2, q3, lv)
                elif z.shape[0] == 0 and signed:  # zero points the compiler sees are 0
                    a0, a1, a2, a3 = _dot_int4(e, o, q0, q1, q2, q3, 0, 0, 0, 0, True)
                elif z.shape[0] == 0:
                    a0, a1, a2, a3 = _dot_int4(e, o, q0, q1, q2, q3, 0, 0, 0, 0, False)
                elif signed:
                    a0, a1, a2, a3 = _dot_int4(e, o, q0, q1, q2, q3, z0, z1, z2, z3, True)
                else:
                    a0, a1, a2, a3 = _dot_int4(e, o, q0, q1, q2, q3, z0, z1, z2, z3, False)
                _finish4(out, i, n0, n_out, g, a0, a1, a2, a3, s, m, xsum)


@numba.njit(inline="always")
def _put(out, i, n, n_out, acc, bias_codes, s):
    """out[i, n] = float32 of (acc + bias code) * s, in float64 (acc an exact integer);
    nothing past the last row."""
    if n < n_out:
        extra = bias_codes[i, n] if bias_codes.shape[0] > 0 else 0.0
        out[i, n] = np.float32((acc + extra) * s)


@numba.njit(parallel=True, fastmath=_FAST, cache=True)
def linear_codes(xq, span, q, sx, sw, bias_codes, out):
    """An integer matmul as W8A8 inference runs it: out[i, n] = float32 of
    (sum_k xq[i, k] * q[n, k] + bias_codes[i, n]) * sx[i] * sw[n]. xq (M, K) holds the input
    codes less their zero points, integers held in float32; q (N, K) int8 weight codes
    (symmetric); sx (M,) and sw (N,) float64 scales; bias_codes (M, N) float64 integers (an
    int32 bias in units of sx * sw), or (0, 0) for none.

    The integer sum is exact, as an int32 accumulator holds it: float32 lanes (which
    vectorise where numba's integer arithmetic, widened to int64, would not) sum ``span``
    inputs at a time, few enough that every partial sum is an integer below 2^24 in any
    order, and the spans' sums are added in float64. The rest is one float64 product,
    rounded once to float32."""
    rows, k = xq.shape
    n_out = q.shape[0]
    for b in numba.prange((n_out + ROWS - 1) // ROWS):
        n0, n1, n2, n3 = _block(b, n_out)
        for i in range(rows):
            c0 = c1 = c2 = c3 = 0.0
            for lo in range(0, k, span):
                hi = min(lo + span, k)
                a0, a1, a2, a3 = _dot_int8(
                    xq[i, lo:hi], q[n0, lo:hi], q[n1, lo:hi], q[n2, lo:hi], q[n3, lo:hi],
                    np.int32(0), np.int32(0), np.int32(0), np.int32(0),
                )  # fmt: skip
                c0 += np.float64(a0)
                c1 += np.float64(a1)
                c2 += np.float64(a2)
                c3 += np.float64(a3)
            _put(out, i, n0, n_out, c0, bias_codes, sx[i] * sw[n0])
            _put(out, i, n0 + 1, n_out, c1, bias_codes, sx[i] * sw[n1])
            _put(out, i, n0 + 2, n_out, c2, bias_codes, sx[i] * sw[n2])
            _put(out, i, n0 + 3, n_out, c3, bias_codes, sx[i] * sw[n3])


@numba.njit(inline="always")
def _group(q, n, g, width, s, z, m):
    """Group g of row n: its columns of q [lo, hi) (``width`` to a group), zero point,
    scale and minimum (0 where the scheme has none)."""
    lo = g * width
    hi = min(lo + width, q.shape[1])
    return lo, hi, _zero(z, n, g), s[n, g], m[n, g] if m.shape[0] > 0 else 0.0


@numba.njit(parallel=True, cache=True)
def decode8(q, rows, lv, s, z, m, gsize, out):
    """out[n, k] = (q - z) * s + m (an int grid) or lv[q] * s (levels lv, float64) computed
    in float64 (s, m float64) and rounded once to out's dtype: what the layer's torch decode
    gives, in one pass; out[r] is row rows[r] of the weight."""
    for r in numba.prange(rows.size):
        n = rows[r]
        for g in range(s.shape[1]):
            lo, hi, zz, sc, mm = _group(q, n, g, gsize, s, z, m)
            if lv.size:
                for j in range(lo, hi):
                    out[r, j] = lv[np.int32(q[n, j])] * sc
            else:
                for j in range(lo, hi):
                    out[r, j] = np.float64(np.int32(q[n, j]) - zz) * sc + mm


@numba.njit(parallel=True, cache=True)
def decode4(q, rows, signed, lv, s, z, m, gsize, out):
    """``decode8`` for 4-bit codes packed low nibble first (q: N x K / 2 bytes)."""
    for r in numba.prange(rows.size):
        n = rows[r]
        for g in range(s.shape[1]):
            lo, hi, zz, sc, mm = _group(q, n, g, gsize // 2, s, z, m)
            for j in range(lo, hi):
                b = np.int32(q[n, j])
                a = b & 15
                c = (b >> 4) & 15
                if lv.size:
                    out[r, 2 * j] = lv[a] * sc
                    out[r, 2 * j + 1] = lv[c] * sc
                    continue
                if signed:
                    a = (a ^ 8) - 8
                    c = (c ^ 8) - 8
                out[r, 2 * j] = np.float64(a - zz) * sc + mm
                out[r, 2 * j + 1] = np.float64(c - zz) * sc + mm


#: The products on the calling thread, for small layers (see ``numfmt._numba.serial_twin``).
linear8_serial = serial_twin(linear8, "linear8_serial")
linear4_serial = serial_twin(linear4, "linear4_serial")
linear_codes_serial = serial_twin(linear_codes, "linear_codes_serial")
