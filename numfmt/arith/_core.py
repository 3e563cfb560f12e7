"""The scalar heart of arithmetic in a format: each operation's exact result, rounded once.

Every operation here works on float64 operands and returns the exact result **rounded to odd
at 53 bits** (truncated, with the last bit set when anything was cut off), as a sign, a 53-bit
integer significand and an unbounded exponent. Rounding to odd at p + 2 bits or more and then
to p bits in any mode gives what rounding the exact value once would (Boldo & Melquiond, "When
double rounding is odd", 2005), so ``numfmt.formats._core.classify_one`` finishes the job for
any target of 51 significand bits or fewer, in every rounding mode.

The exact results come from error-free transformations in float64:

* ``two_sum``: a + b = s + t exactly (Knuth);
* ``two_prod``: a * b = p + t exactly, by Veltkamp's split (Dekker), valid because the
  operands are first scaled into [0.5, 1) by their binary exponents;
* division and square root: the remainder a - q*b (a - q*q) of the float64 quotient (root) is
  exact, and its sign says on which side of q the exact result lies;
* fma: a*b = uh + ul exactly, c + uh = th + tl exactly, v = odd(tl + ul), and odd(th + v) is
  odd(a*b + c) (Boldo & Melquiond, "Emulation of FMA and correctly rounded sums", 2008).

Operands are scaled by powers of two (exact) before anything else, so no step overflows or
underflows; an operand whose scaled value would fall below 2^-600 while another is near 1 can
only act as a sticky bit, and becomes one. Plain Python on purpose: numba compiles these same
functions for arrays (``_jit.py``), and the tests run them as Python too.
"""

from __future__ import annotations

import math

from numfmt.formats import _core as fc
from numfmt.formats._core import classify_one

# Operations, as the kernels take them.
ADD, SUB, MUL, DIV, FMA, SQRT = 0, 1, 2, 3, 4, 5
NAMES = ("add", "sub", "mul", "div", "fma", "sqrt")
ARITY = (2, 2, 2, 2, 3, 1)

# Flags, as bits.
INEXACT, UNDERFLOW, OVERFLOW, INVALID, DIVIDE_BY_ZERO = 1, 2, 4, 8, 16

_SPLIT = 134217729.0  # 2**27 + 1
_TWO53 = 9007199254740992.0
_STICKY = 2.0**-600  # far below the last bit of any scaled result near 1


def two_sum(a, b):
    """(s, t) with s = fl(a + b) and a + b = s + t exactly."""
    s = a + b
    bb = s - a
    t = (a - (s - bb)) + (b - bb)
    return s, t


def _split(a):
    t = _SPLIT * a
    hi = t - (t - a)
    return hi, a - hi


def two_prod(a, b):
    """(p, t) with p = fl(a * b) and a * b = p + t exactly (no overflow or underflow)."""
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    t = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, t


def odd(r, t):
    """Round r + t (exact, |t| at most half an ulp of r, r a nonzero normal float64) to odd:
    truncate toward zero, then set the last bit of the significand if t was not 0."""
    if t == 0.0:
        return r
    mant, ex = math.frexp(abs(r))
    sig = int(mant * _TWO53)
    if (t > 0.0) == (r > 0.0):  # the exact value lies beyond r: truncation keeps r
        mag = math.ldexp(float(sig | 1), ex - 53)
    elif sig == 4503599627370496:  # r = 2^k and the value lies below: the binade below
        mag = math.ldexp(_TWO53 - 1.0, ex - 54)
    else:
        mag = math.ldexp(float((sig - 1) | 1), ex - 53)
    return math.copysign(mag, r)


def _scaled(x, shift):
    """x * 2**shift, or a sticky bit of x's sign where that would fall below 2^-600."""
    if x == 0.0:
        return x
    _, ex = math.frexp(x)
    if ex + shift < -600:
        return math.copysign(_STICKY, x)
    return math.ldexp(x, shift)


def _exponent(x):
    return math.frexp(x)[1]


# Results: (kind, negative, rounded-to-odd magnitude as a float64 near 1, binary exponent,
# flags). The value is mag * 2**exp; kind is numfmt.formats._core's KIND_*.
def _nan(flags):
    return fc.KIND_NAN, False, 0.0, 0, flags


def _zero(neg):
    return fc.KIND_FINITE, neg, 0.0, 0, 0


def _exact_sum_zero(neg_a, neg_b, mode):
    """The sign of an exact zero sum (IEEE 754 6.3): the operands' sign when they agree, else
    +0, or -0 when rounding down."""
    if neg_a == neg_b:
        return neg_a
    return mode == fc.RDOWN


def _finite(r, e):
    return fc.KIND_FINITE, r < 0.0, abs(r), e, 0


def add(a, b, mode):
    """a + b (sub is add with -b)."""
    if a != a or b != b:
        return _nan(0)
    a_inf, b_inf = math.isinf(a), math.isinf(b)
    if a_inf or b_inf:
        if a_inf and b_inf and (a > 0) != (b > 0):
            return _nan(INVALID)
        inf = a if a_inf else b
        return fc.KIND_INF, inf < 0, 0.0, 0, 0
    if a == 0.0 and b == 0.0:
        return _zero(_exact_sum_zero(math.copysign(1.0, a) < 0, math.copysign(1.0, b) < 0, mode))
    if a == 0.0 or b == 0.0:
        return _finite(b if a == 0.0 else a, 0)
    e = max(_exponent(a), _exponent(b))
    s, t = two_sum(_scaled(a, -e), _scaled(b, -e))
    if s == 0.0:
        return _zero(mode == fc.RDOWN)
    return _finite(odd(s, t), e)


def mul(a, b, mode):
    """a * b."""
    if a != a or b != b:
        return _nan(0)
    neg = (math.copysign(1.0, a) < 0) != (math.copysign(1.0, b) < 0)
    if math.isinf(a) or math.isinf(b):
        if a == 0.0 or b == 0.0:
            return _nan(INVALID)
        return fc.KIND_INF, neg, 0.0, 0, 0
    if a == 0.0 or b == 0.0:
        return _zero(neg)
    ma, ea = math.frexp(abs(a))
    mb, eb = math.frexp(abs(b))
    p, t = two_prod(ma, mb)
    return fc.KIND_FINITE, neg, odd(p, t), ea + eb, 0


def div(a, b, mode):
    """a / b."""
    if a != a or b != b:
        return _nan(0)
    neg = (math.copysign(1.0, a) < 0) != (math.copysign(1.0, b) < 0)
    a_inf, b_inf = math.isinf(a), math.isinf(b)
    if a_inf and b_inf:
        return _nan(INVALID)
    if a_inf:
        return fc.KIND_INF, neg, 0.0, 0, 0
    if b_inf:
        return _zero(neg)
    if b == 0.0:
        if a == 0.0:
            return _nan(INVALID)
        return fc.KIND_INF, neg, 0.0, 0, DIVIDE_BY_ZERO
    if a == 0.0:
        return _zero(neg)
    ma, ea = math.frexp(abs(a))
    mb, eb = math.frexp(abs(b))
    q = ma / mb
    ph, pl = two_prod(q, mb)
    rem = (ma - ph) - pl  # exact: the remainder of a correctly rounded quotient
    return fc.KIND_FINITE, neg, odd(q, rem), ea - eb, 0


def sqrt(a, mode):
    """The square root of a (sqrt(-0) = -0, as IEEE 754 says)."""
    if a != a:
        return _nan(0)
    if a == 0.0:
        return _zero(math.copysign(1.0, a) < 0)
    if a < 0.0:
        return _nan(INVALID)
    if math.isinf(a):
        return fc.KIND_INF, False, 0.0, 0, 0
    ma, ea = math.frexp(a)
    if ea % 2:
        ma, ea = ma * 2.0, ea - 1  # an even exponent halves exactly
    q = math.sqrt(ma)
    ph, pl = two_prod(q, q)
    rem = (ma - ph) - pl  # exact, as for division
    return fc.KIND_FINITE, False, odd(q, rem), ea // 2, 0


def fma(a, b, c, mode):
    """a * b + c with one rounding."""
    if a != a or b != b or c != c:
        return _nan(0)
    neg_ab = (math.copysign(1.0, a) < 0) != (math.copysign(1.0, b) < 0)
    if math.isinf(a) or math.isinf(b):
        if a == 0.0 or b == 0.0:
            return _nan(INVALID)
        if math.isinf(c) and (c < 0) != neg_ab:
            return _nan(INVALID)
        return fc.KIND_INF, neg_ab, 0.0, 0, 0
    if math.isinf(c):
        return fc.KIND_INF, c < 0, 0.0, 0, 0
    if a == 0.0 or b == 0.0:
        if c == 0.0:
            return _zero(_exact_sum_zero(neg_ab, math.copysign(1.0, c) < 0, mode))
        return _finite(c, 0)
    ma, ea = math.frexp(abs(a))
    mb, eb = math.frexp(abs(b))
    if neg_ab:
        ma = -ma
    if c == 0.0:
        p, t = two_prod(ma, mb)
        return _finite(odd(p, t), ea + eb)
    e = max(ea + eb, _exponent(c))
    mb = _scaled(mb, ea + eb - e)
    cs = _scaled(c, -e)
    if abs(mb) == _STICKY:  # the product is only a sticky bit below c
        uh, ul = math.copysign(_STICKY, ma), 0.0
    else:
        uh, ul = two_prod(ma, mb)
    th, tl = two_sum(cs, uh)
    s, st = two_sum(tl, ul)
    v = odd(s, st) if s != 0.0 else 0.0
    r, rt = two_sum(th, v)
    if r == 0.0:
        return _zero(mode == fc.RDOWN)
    return _finite(odd(r, rt), e)


def apply(op, a, b, c, mode):
    """The operation numbered op on up to three operands (unused ones are ignored)."""
    if op == ADD:
        return add(a, b, mode)
    if op == SUB:
        return add(a, -b, mode)
    if op == MUL:
        return mul(a, b, mode)
    if op == DIV:
        return div(a, b, mode)
    if op == FMA:
        return fma(a, b, c, mode)
    return sqrt(a, mode)


def daz(x, min_normal):
    """An operand below the format's smallest normal magnitude, as a zero of its sign."""
    return math.copysign(0.0, x) if abs(x) < min_normal else x


def round_result(kind, neg, mag, exp, flags, u, plan, ftz):
    """(code, slot, flags) of one result mag * 2**exp in the target of ``plan``
    (``round_split`` on the significand and exponent of mag)."""
    sig, e = 0, 0
    if kind == fc.KIND_FINITE and mag != 0.0:
        m, ex = math.frexp(mag)
        sig, e = int(m * _TWO53), ex - 1 + exp
    return round_split(kind, neg, sig, e, flags, u, plan, ftz)


def round_split(kind, neg, sig, e, flags, u, plan, ftz):
    """(code, slot, flags) of one result sig * 2**(e - 52), sig a 53-bit integer rounded to
    odd, in the target of ``plan``. slot is ``NO_ERROR`` for a finite nonzero code of the
    result's own, else the plan's slot for what the result is (a zero, an overflow, ...), and
    code then the plan's code for it (0 where the plan refuses it: see ``refused``).

    Flags are IEEE 754's: inexact, underflow (tiny before rounding, and inexact), overflow,
    invalid and divide-by-zero. ftz flushes a result that rounded to a subnormal to a zero of
    its sign (counted as an underflow).
    """
    if sig != 0:
        emin, mbits = plan[fc.P_EMIN], plan[fc.P_M]
        es = max(e, emin) if plan[fc.P_SUBN] else e
        shift = 52 - mbits + (es - e)
        if shift >= 53 or (shift > 0 and sig & ((1 << shift) - 1)):
            flags |= INEXACT
        if e < emin and not plan[fc.P_SUBN]:  # nothing lies below the smallest normal: it moves
            flags |= INEXACT
        if e < emin and flags & INEXACT:
            flags |= UNDERFLOW
    code, slot = classify_one(kind, neg, sig, e, 52, u, plan)
    if slot == fc.P_OVF_POS or slot == fc.P_OVF_NEG:
        flags |= OVERFLOW | INEXACT
    subnormal = (code & ~plan[fc.P_SIGN]) < (1 << plan[fc.P_M])
    if ftz and slot == fc.NO_ERROR and plan[fc.P_SUBN] and subnormal:
        slot = fc.P_ZERO_NEG if neg else fc.P_ZERO_POS
        flags |= UNDERFLOW | INEXACT
    if slot == fc.NO_ERROR or refused(slot, plan):
        return code if slot == fc.NO_ERROR else 0, slot, flags
    if slot >= fc.P_ZERO_POS and plan[slot] == plan[fc.P_NAN_POS] and kind == fc.KIND_FINITE:
        flags |= INVALID  # a zero or a negative where the format has none (e8m0): NaN
    return plan[slot], slot, flags


def refused(slot, plan):
    """Whether the plan refuses a result of this slot (NO_ERROR: a code of its own)."""
    return slot != fc.NO_ERROR and (plan[fc.P_ERRORS] >> slot) & 1 == 1


def value_of(code, slot, plan, slot_values):
    """The value of a result from ``round_split``: where its slot is NO_ERROR, of its finite
    code (read from the fields the plan describes); else slot_values[slot], the value of the
    code the plan gives that slot (any float where the plan refuses it)."""
    if slot != fc.NO_ERROR:
        return slot_values[slot]
    m, emin, subn, sign = plan[fc.P_M], plan[fc.P_EMIN], plan[fc.P_SUBN], plan[fc.P_SIGN]
    mag = code & ~sign
    biased = mag >> m
    frac = mag - (biased << m)
    if subn and biased == 0:
        v = math.ldexp(float(frac), emin - m)
    else:  # a format without subnormals has its smallest normal at biased exponent 0
        v = math.ldexp(float(frac + (1 << m)), biased + emin - subn - m)
    return -v if code & sign else v
