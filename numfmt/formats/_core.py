"""The scalar heart of float encoding, in plain integer arithmetic.

``encode_one`` rounds one value, given as ``sig * 2**(e - p)`` with ``sig`` an integer in
``[2**p, 2**(p+1))``, to the code of a float format. It uses only integer operations, so the
same function serves twice:

* in Python, on arbitrary-precision ints, for exact values (``3.14`` read as 157/50), with
  ``p`` large and a sticky bit in the last place;
* compiled by numba (``_kernels.py``), on int64, for float64 arrays with ``p = 52``.

The rounding happens on an unbounded exponent range first; a magnitude code above the largest
finite one is then an overflow, and the *plan* (built by ``encode.make_plan`` from the format,
the rounding mode and the overflow policy) says which code that becomes, or that it is an error
the caller turns into an exception.

Why the magnitude formula works: with ``es`` the exponent clamped up to ``emin`` (so that
subnormals shift further), ``q`` the rounded significand, the code is
``((es - emin + subnormals) << m) + q - 2**m``: for a normal number that is the biased exponent
above the mantissa bits, for a subnormal it is ``q`` itself, and a carry out of the mantissa
(``q == 2**(m+1)``) lands in the exponent field as integer addition, which is what rounding up
into the next binade means.
"""

from __future__ import annotations

import math

KIND_FINITE, KIND_INF, KIND_NAN = 0, 1, 2

# Rounding codes, in the order of numfmt.formats.rounding.Rounding.
RNE, RNA, RNZ, RTZ, RUP, RDOWN, RODD, RSTOCH = 0, 1, 2, 3, 4, 5, 6, 7

# Fields of a plan tuple. Codes are int64 bit patterns (a 64-bit format's sign bit makes them
# negative); the slots from P_NAN_POS to P_NEG hold the code for one kind of input, and bit
# ``slot`` of P_ERRORS says that this kind of input is an error instead.
(
    P_M,  # mantissa bits
    P_EMIN,  # exponent of the smallest normal
    P_SUBN,  # 1 if the format has subnormals (and zero), else 0
    P_EMAX,  # exponent of the largest finite value
    P_MAXMAG,  # magnitude code of the largest finite value
    P_SIGN,  # sign mask, 0 for unsigned formats
    P_MODE,  # rounding code
    P_ERRORS,  # bit mask over the slots below
    P_NAN_POS,  # +NaN input
    P_NAN_NEG,  # -NaN input
    P_INF_POS,  # +inf input
    P_INF_NEG,  # -inf input
    P_OVF_POS,  # a positive finite value beyond the range
    P_OVF_NEG,  # a negative finite value beyond the range
    P_ZERO_POS,  # +0, input or underflow
    P_ZERO_NEG,  # -0, input or underflow
    P_NEG,  # a negative value in an unsigned format
) = range(17)
PLAN_LEN = 17
SLOTS = range(P_NAN_POS, P_NEG + 1)
NO_ERROR = -1


def encode_one(kind, neg, sig, e, p, u, plan):
    """(code, error slot) of one value; error slot is NO_ERROR or the slot that refused it."""
    code, slot = classify_one(kind, neg, sig, e, p, u, plan)
    if slot == NO_ERROR:
        return code, NO_ERROR
    if (plan[P_ERRORS] >> slot) & 1:
        return 0, slot
    return plan[slot], NO_ERROR


def increment(q, rem, half, mode, neg, up):
    """q, a truncated significand, rounded by mode: rem is what was cut off (an integer below
    ``2 * half``), half the remainder of a tie, up the draw of stochastic rounding (whether an
    inexact value rounds up: a uniform u < rem / 2**shift).

    Branch-free increments (a rounding decision is a coin flip for the branch predictor) and
    no calls, so that the loops which inline it vectorise."""
    inexact = int(rem != 0)
    if mode == RNE:
        q += int(rem > half) | (int(rem == half) & q & 1)
    elif mode == RNA:
        q += int(rem >= half)
    elif mode == RNZ:
        q += int(rem > half)
    elif mode == RODD:
        q |= inexact
    elif mode == RUP:
        q += inexact & int(not neg)
    elif mode == RDOWN:
        q += inexact & int(neg)
    elif mode == RSTOCH:
        q += inexact & int(up)
    return q


def classify_one(kind, neg, sig, e, p, u, plan):
    """(code, NO_ERROR) of a value that rounds to a finite nonzero code of its own, else
    (0, the slot of what it is: NaN, inf, an overflow, a zero, a negative in an unsigned
    format). ``encode_one`` then looks the slot up in the plan; ``numfmt.arith`` also counts
    the slots as IEEE flags."""
    slot = NO_ERROR
    if kind == KIND_NAN:
        slot = P_NAN_NEG if neg else P_NAN_POS
    elif kind == KIND_INF:
        slot = P_INF_NEG if neg else P_INF_POS
    elif sig == 0:
        slot = P_ZERO_NEG if neg else P_ZERO_POS
    elif neg and plan[P_SIGN] == 0:
        slot = P_NEG
    else:
        m, emin, subn, mode = plan[P_M], plan[P_EMIN], plan[P_SUBN], plan[P_MODE]
        es = max(e, emin) if subn else e
        if es > plan[P_EMAX]:
            slot = P_OVF_NEG if neg else P_OVF_POS
        else:
            shift = p - m + (es - e)
            if shift <= 0:
                q = sig << (-shift)
            else:
                # Past p + 2 every bit of sig lies below the half-way point; clamping keeps
                # the shifts legal for int64.
                sc = min(shift, p + 2)
                q = sig >> sc
                rem = sig - (q << sc)
                up = mode == RSTOCH and u < math.ldexp(float(rem), -shift)
                q = increment(q, rem, 1 << (sc - 1), mode, neg, up)
            if not subn:
                es = max(es, emin - 1)  # below the smallest value: keep it (there is no zero)
            high = (es - emin + subn) << m
            extra = q - (1 << m)
            if extra > plan[P_MAXMAG] - high:
                slot = P_OVF_NEG if neg else P_OVF_POS
            else:
                mag = max(high + extra, 0)
                if mag == 0 and subn:
                    slot = P_ZERO_NEG if neg else P_ZERO_POS
                else:
                    return ((mag | plan[P_SIGN]) if neg else mag), NO_ERROR
    return 0, slot
