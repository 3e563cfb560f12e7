"""The numba kernels themselves; imported only by ``_kernels`` when an array needs them.

The encoder runs in two passes:

1. ``_fast``: the arithmetic of ``_core.encode_one`` for the common case (a normal input that
   rounds to a finite code, to zero, or overflows without error), written without branches so
   that the compiler vectorises the loop. It flags anything else as special: a subnormal input,
   a negative value for an unsigned format, stochastic rounding, or an input the plan refuses.
2. only if the first pass met any: ``_core.encode_one`` itself, compiled, on the special
   elements.

Both tiers follow the same plan, and the tests check the kernels against the exact path and the
numpy path on every rounding mode and overflow policy.
"""

import math

import numba
import numpy as np
from numba import types
from numba.extending import intrinsic

from numfmt._numba import compile_functions
from numfmt.formats import _core as c

_encode_one = compile_functions(c, ["increment", "classify_one", "encode_one"])["encode_one"]
_TWO_53 = 9007199254740992.0


@numba.njit(inline="always")
def _pick(cond, a, b):
    return a if cond else b


@numba.njit(inline="always")
def _slot(plan, slot, neg):
    """(code, refused) of the slot pair that starts at slot (positive) for a sign."""
    chosen = slot + 1 if neg else slot
    return plan[chosen], (plan[c.P_ERRORS] >> chosen) & 1


@numba.njit(inline="always")
def _fast(neg, sig, e, zero_in, special_in, inf_in, nan_in, plan):
    """(code, special) of one input already split into sign, significand and exponent.

    plan must be a tuple: its fields then live in registers, where an array's would be
    reloaded on every element (the stores to out might alias it) and block vectorisation.
    Slots are chosen by selects on constant indices for the same reason.
    """
    m, emin, subn, emax = plan[c.P_M], plan[c.P_EMIN], plan[c.P_SUBN], plan[c.P_EMAX]
    mode, sign = plan[c.P_MODE], plan[c.P_SIGN]
    es = max(e, emin) if subn == 1 else e
    over = es > emax
    es = min(es, emax)
    shift = min(52 - m + (es - e), 54)
    q = sig >> shift
    rem = sig - (q << shift)
    half = np.int64(1) << (shift - 1)
    inexact = np.int64(rem != 0)
    inc = np.int64(0)
    if mode == c.RNE:
        inc = np.int64(rem > half) | (np.int64(rem == half) & q & 1)
    elif mode == c.RNA:
        inc = np.int64(rem >= half)
    elif mode == c.RNZ:
        inc = np.int64(rem > half)
    elif mode == c.RODD:
        inc = inexact & ~q & 1
    elif mode == c.RUP:
        inc = inexact & np.int64(not neg)
    elif mode == c.RDOWN:
        inc = inexact & np.int64(neg)
    q += inc
    es = max(es, emin - 1)
    high = (es - emin + subn) << m
    extra = q - (np.int64(1) << m)
    over = (over | (extra > plan[c.P_MAXMAG] - high)) and not zero_in
    mag = max(high + extra, 0)
    zero = zero_in or (mag == 0 and subn == 1)

    code, refused = (mag | sign) if neg else mag, 0
    zero_code, zero_refused = _slot(plan, c.P_ZERO_POS, neg)
    over_code, over_refused = _slot(plan, c.P_OVF_POS, neg)
    inf_code, inf_refused = _slot(plan, c.P_INF_POS, neg)
    nan_code, nan_refused = _slot(plan, c.P_NAN_POS, neg)
    if zero:
        code, refused = zero_code, zero_refused
    if over:
        code, refused = over_code, over_refused
    if inf_in:
        code, refused = inf_code, inf_refused
    if nan_in:
        code, refused = nan_code, nan_refused
    special = special_in or refused or (neg and sign == 0) or mode == c.RSTOCH or m > 51
    return code, special


@numba.njit(inline="always")
def _slow(v, u, plan):
    """encode_one on a float64 value."""
    neg = math.copysign(1.0, v) < 0.0
    a = abs(v)
    kind, sig, e = c.KIND_FINITE, np.int64(0), 0
    if a != a:
        kind = c.KIND_NAN
    elif a == math.inf:
        kind = c.KIND_INF
    elif a != 0.0:
        mant, ex = math.frexp(a)
        sig, e = np.int64(mant * _TWO_53), ex - 1
    return _encode_one(kind, neg, sig, e, 52, u, plan)


@numba.njit(inline="always")
def _split64(b):
    field = (b >> 52) & 0x7FF
    mant = b & 0xFFFFFFFFFFFFF
    top = field == 0x7FF
    return (
        b < 0,
        mant | (np.int64(1) << 52),
        field - 1023,
        (field == 0) & (mant == 0),
        (field == 0) & (mant != 0),
        top & (mant == 0),
        top & (mant != 0),
    )


@numba.njit(inline="always")
def _split32(b):
    field = np.int64((b >> 23) & 0xFF)
    mant = np.int64(b & 0x7FFFFF)
    top = field == 0xFF
    return (
        b < 0,
        (mant | (np.int64(1) << 23)) << 29,
        field - 127,
        (field == 0) & (mant == 0),
        (field == 0) & (mant != 0),
        top & (mant == 0),
        top & (mant != 0),
    )


@numba.njit(parallel=True, cache=True)
def _fast_pass64(bits, out, plan):
    specials = 0
    for i in numba.prange(bits.size):
        neg, sig, e, z, s, inf, nan = _split64(bits[i])
        out[i], special = _fast(neg, sig, e, z, s, inf, nan, plan)
        specials += special
    return specials


@numba.njit(parallel=True, cache=True)
def _slow_pass64(x, bits, out, plan, u):
    stochastic = u.size == x.size
    refused = 0
    for i in numba.prange(bits.size):
        neg, sig, e, z, s, inf, nan = _split64(bits[i])
        if _fast(neg, sig, e, z, s, inf, nan, plan)[1]:
            code, slot = _slow(x[i], u[i] if stochastic else 0.0, plan)
            out[i] = code
            refused += slot != c.NO_ERROR
    return refused


@numba.njit(parallel=True, cache=True)
def _fast_pass32(bits, out, plan):
    specials = 0
    for i in numba.prange(bits.size):
        neg, sig, e, z, s, inf, nan = _split32(bits[i])
        out[i], special = _fast(neg, sig, e, z, s, inf, nan, plan)
        specials += special
    return specials


@numba.njit(parallel=True, cache=True)
def _slow_pass32(x, bits, out, plan, u):
    stochastic = u.size == x.size
    refused = 0
    for i in numba.prange(bits.size):
        neg, sig, e, z, s, inf, nan = _split32(bits[i])
        if _fast(neg, sig, e, z, s, inf, nan, plan)[1]:
            code, slot = _slow(np.float64(x[i]), u[i] if stochastic else 0.0, plan)
            out[i] = code
            refused += slot != c.NO_ERROR
    return refused


def encode_f64(x, out, plan, u):
    """Encode float64 x into out, a code per element; return how many the plan refused."""
    bits = x.view(np.int64)
    if _fast_pass64(bits, out, plan) == 0:
        return 0
    return _slow_pass64(x, bits, out, plan, u)


def encode_f32(x, out, plan, u):
    """encode_f64 for float32 input, without a float64 copy."""
    bits = x.view(np.int32)
    if _fast_pass32(bits, out, plan) == 0:
        return 0
    return _slow_pass32(x, bits, out, plan, u)


@numba.njit(parallel=True, cache=True)
def take(table, codes, out):
    """out[i] = table[codes[i]]."""
    for i in numba.prange(codes.size):
        out[i] = table[codes[i]]


@numba.njit(parallel=True, cache=True)
def round_prefix(bits, out, shift, inf_bits, sign_bit, nan_pos, nan_neg):
    """Nearest-even encoding into a format made of the top bits of the input's own format
    (bfloat16 and tf32 of float32): integer rounding of the bit pattern. A carry runs into the
    exponent, and from the largest finite value into inf, exactly as rounding up should."""
    half = (np.uint64(1) << (shift - np.uint64(1))) - np.uint64(1)
    for i in numba.prange(bits.size):
        b = np.uint64(bits[i])
        if b & (sign_bit - np.uint64(1)) > inf_bits:
            out[i] = nan_neg if b & sign_bit else nan_pos
        else:
            out[i] = (b + half + ((b >> shift) & np.uint64(1))) >> shift


@intrinsic
def _float32_bits(typingctx, x):
    """The bits of a float32 as a uint32 (an LLVM bitcast)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.uint32))

    return types.uint32(types.float32), codegen


@numba.njit(parallel=True, cache=True)
def round_prefix_via_float32(x, out, shift, nan_pos, nan_neg):
    """Nearest-even from float64 into a format made of float32's top bits (bfloat16, tf32).

    float64 -> float32 with round-to-odd keeps, in float32's last bit, whether anything was
    cut off; with at least two bits to spare below the target's last bit, rounding that to
    nearest-even gives the same answer as rounding the float64 directly (Boldo & Melquiond,
    "When double rounding is odd", 2005). Rounding to nearest-even twice, as ml_dtypes did up to
    0.6.0, goes wrong on false ties.
    """
    half = (np.uint32(1) << (shift - np.uint32(1))) - np.uint32(1)
    for i in numba.prange(x.size):
        v = x[i]
        y = np.float32(v)
        back = np.float64(y)
        inexact = back != v
        b = _float32_bits(y) - np.uint32(inexact and abs(back) > abs(v))  # toward zero ...
        b |= np.uint32(inexact)  # ... then odd
        nan = (b & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)
        rounded = (b + half + ((b >> shift) & np.uint32(1))) >> shift
        out[i] = (nan_neg if b >> np.uint32(31) else nan_pos) if nan else rounded
