"""Every pair of finite operands of the 8-bit (and narrower) float formats, every operation and
every deterministic rounding mode, against exact rational arithmetic.

The exact result of each operation is computed apart from numfmt.arith: sums, differences and
products of these formats' values are exact in float64, quotients and fma results are
Fractions. Each distinct exact result is then rounded once per mode: the float64 ones by
numfmt.formats.round_to (itself checked against tests/reference.py on every format and mode in
tests/formats), the Fractions by tests/reference.py (Fractions and grid neighbours, sharing no
code with numfmt).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

import numfmt.arith as arith
from numfmt.formats import decode, get_format, round_to
from tests.reference import reference_value

FORMATS = ["fp8_e4m3", "fp8_e5m2", "e4m3fnuz", "fp6_e3m2", "fp6_e2m3", "fp4_e2m1"]
MODES = ["nearest-even", "nearest-away", "nearest-zero", "toward-zero", "up", "down", "odd"]
OVERFLOWS = ["ieee", "saturate"]


def finite_values(fmt) -> np.ndarray:
    v = decode(np.arange(fmt.num_codes), fmt)
    return v[np.isfinite(v)]


def as_float(ref) -> float:
    """A reference result as the float64 numfmt returns."""
    if isinstance(ref, str):
        return {"-0": -0.0, "inf": math.inf, "-inf": -math.inf, "nan": math.nan}[ref]
    return float(ref)


def zero_sign(op: str, a: np.ndarray, b: np.ndarray, mode: str) -> np.ndarray:
    """The sign bit IEEE 754 6.3 gives an exact zero result."""
    if op in ("mul", "div"):
        return np.signbit(a) != np.signbit(b)
    sb = np.signbit(b) if op == "add" else ~np.signbit(b)
    return np.where(np.signbit(a) == sb, np.signbit(a), mode == "down")


_REFERENCE: dict = {}


def reference(key: Fraction, fmt, mode: str, overflow: str) -> float:
    """reference_value as a float, remembered: the operations share most exact results."""
    k = (fmt.name, mode, overflow, key)
    if k not in _REFERENCE:
        _REFERENCE[k] = as_float(reference_value(key, fmt, mode, overflow))
    return _REFERENCE[k]


def exact_keys(op, a, b) -> tuple[list[Fraction], np.ndarray]:
    """The distinct exact results of the pairs, and which one each pair has."""
    if op == "div":
        index: dict = {}
        pairs = zip(a.tolist(), b.tolist(), strict=True)
        which = [index.setdefault(Fraction(x) / Fraction(y), len(index)) for x, y in pairs]
        return list(index), np.array(which)
    exact = {"add": a + b, "sub": a - b, "mul": a * b}[op]  # exact for these formats
    distinct, which = np.unique(exact, return_inverse=True)
    return [Fraction(k) for k in distinct.tolist()], which.reshape(-1)


def expected(op, a, b, keys, which, fmt, mode, overflow) -> np.ndarray:
    if op == "div":
        out = np.array([reference(k, fmt, mode, overflow) for k in keys])[which]
    else:
        exact = np.array([float(k) for k in keys])
        out = np.asarray(round_to(exact, fmt, mode, overflow), dtype=np.float64)[which]
    exact_zero = np.array([k == 0 for k in keys])[which]
    signs = zero_sign(op, a, b, mode)
    out[exact_zero] = np.where(signs[exact_zero], -0.0, 0.0)
    if not fmt.has_negative_zero:
        out[out == 0] = 0.0
    return out


def same(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    both_nan = np.isnan(got) & np.isnan(want)
    return both_nan | ((got == want) & (np.signbit(got) == np.signbit(want)))


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_every_pair_every_mode(name, op):
    fmt = get_format(name)
    v = finite_values(fmt)
    a, b = (x.ravel() for x in np.meshgrid(v, v))
    if op == "div":
        a, b = a[b != 0], b[b != 0]  # x / 0: test_division_by_zero
    keys, which = exact_keys(op, a, b)
    beyond = np.array([abs(k) > fmt.max_value for k in keys])[which]
    for mode in MODES:
        for overflow in OVERFLOWS:
            # saturation changes only what lies beyond the range: check it there
            pick = np.arange(a.size) if overflow == "ieee" else np.flatnonzero(beyond)
            x, y = a[pick], b[pick]
            got = getattr(arith, op)(x, y, fmt, rounding=mode, overflow=overflow)
            want = expected(op, x, y, keys, which[pick], fmt, mode, overflow)
            bad = np.flatnonzero(~same(np.asarray(got, dtype=np.float64), want))
            assert not bad.size, (
                f"{mode}, {overflow}: {bad.size} of {x.size} wrong, first {x[bad[0]]} {op} "
                f"{y[bad[0]]} = {got[bad[0]]}, want {want[bad[0]]}"
            )


@pytest.mark.parametrize("name", FORMATS)
def test_every_square_root(name):
    fmt = get_format(name)
    v = finite_values(fmt)
    v = v[v >= 0]
    for mode in MODES:
        got = arith.sqrt(v, fmt, rounding=mode)
        want = [as_float(reference_value(sqrt_key(x, fmt), fmt, mode, "ieee")) for x in v]
        want = np.where(np.signbit(v) & (v == 0), -0.0, want)  # IEEE 754: sqrt(-0) = -0
        assert same(np.asarray(got, dtype=np.float64), np.array(want)).all(), mode


def sqrt_key(x: float, fmt) -> Fraction:
    """A rational in the same cell of fmt's grid (and its midpoints) as sqrt(x): the exact
    root where there is one, else the root truncated at 200 bits plus half a bit more."""
    f = Fraction(x)
    k = 200
    scaled = f * 4**k
    root = math.isqrt(scaled.numerator // scaled.denominator)
    if Fraction(root * root) == scaled:
        return Fraction(root, 2**k)
    return Fraction(2 * root + 1, 2 ** (k + 1))


@pytest.mark.parametrize("name", ["fp8_e4m3", "fp8_e5m2", "fp6_e3m2", "fp4_e2m1"])
def test_sampled_fma_triples(name):
    fmt = get_format(name)
    v = finite_values(fmt)
    rng = np.random.default_rng(7)
    a, b, c = (rng.choice(v, 3000) for _ in range(3))
    c[:500] = -a[:500] * b[:500]  # exact zeros and near-cancellations, where signs are subtle
    c[250:500] = np.asarray(arith.mul(a[250:500], b[250:500] * -1.0625, fmt, overflow="saturate"))
    exact = [Fraction(x) * Fraction(y) + Fraction(z) for x, y, z in zip(a, b, c, strict=True)]
    for mode in MODES:
        got = np.asarray(arith.fma(a, b, c, fmt, rounding=mode), dtype=np.float64)
        for i in range(a.size):
            want = reference(exact[i], fmt, mode, "ieee")
            if exact[i] == 0:
                prod_neg = bool(np.signbit(a[i]) != np.signbit(b[i]))
                agree = prod_neg == bool(np.signbit(c[i]))
                neg = prod_neg if agree else mode == "down"
                want = -0.0 if neg and fmt.has_negative_zero else 0.0
            assert same(np.array([got[i]]), np.array([want]))[0], (mode, a[i], b[i], c[i])
