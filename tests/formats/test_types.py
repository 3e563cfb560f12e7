"""Format definitions: derived properties against the specs' own tables."""

from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from numfmt import FixedFormat, FloatFormat, IntFormat, NumfmtError, Specials, get_format
from numfmt.formats.registry import NAMED

P = Fraction(2)


# OCP 8-bit Floating Point Specification (OFP8) v1.0, table 1; OCP Microscaling Formats (MX)
# v1.0, tables 2 and 3 (FP6, FP4, E8M0); IEEE 754-2019 table 3.5 (binary16/32/64).
SPEC = {
    # name: (max, min normal, min subnormal)
    "float8_e4m3fn": (448, P**-6, P**-9),
    "float8_e5m2": (57344, P**-14, P**-16),
    "float6_e2m3fn": (Fraction(15, 2), 1, Fraction(1, 8)),
    "float6_e3m2fn": (28, Fraction(1, 4), Fraction(1, 16)),
    "float4_e2m1fn": (6, 1, Fraction(1, 2)),
    "float8_e8m0fnu": (P**127, P**-127, P**-127),
    "float16": (65504, P**-14, P**-24),
    "float32": ((2 - P**-23) * P**127, P**-126, P**-149),
    "float64": ((2 - P**-52) * P**1023, P**-1022, P**-1074),
}


@pytest.mark.parametrize("name", list(SPEC), ids=str)
def test_range_matches_spec_table(name):
    fmt = get_format(name)
    assert (fmt.max_value, fmt.min_normal, fmt.smallest) == tuple(Fraction(v) for v in SPEC[name])


@pytest.mark.parametrize("name", [n for n, f in NAMED.items() if f.ml_dtype is not None], ids=str)
def test_finfo_agrees_with_ml_dtypes(name):
    fmt = get_format(name)
    fi = (
        ml_dtypes.finfo(fmt.ml_dtype)
        if name not in ("float64", "float32", "float16")
        else np.finfo(name)
    )
    assert fmt.bits == fi.bits
    assert float(fmt.max_value) == float(fi.max)
    assert float(fmt.smallest) == float(fi.smallest_subnormal)
    assert float(fmt.epsilon) == float(fi.eps)
    assert fmt.mantissa_bits == fi.nmant


@pytest.mark.parametrize(
    ("fmt", "specials"),
    [
        (FloatFormat(5, 10), (True, True, True)),
        (FloatFormat(4, 3, specials=Specials.FN), (False, True, True)),
        (FloatFormat(4, 3, specials=Specials.FNUZ), (False, True, False)),
        (FloatFormat(2, 1, specials=Specials.FINITE), (False, False, True)),
        (FloatFormat(8, 0, specials=Specials.FNU), (False, True, False)),
    ],
    ids=["ieee", "fn", "fnuz", "finite", "fnu"],
)
def test_special_value_conventions(fmt, specials):
    assert (fmt.has_inf, fmt.has_nan, fmt.has_negative_zero) == specials


def test_fnuz_bias_defaults_to_two_to_the_e_minus_one():
    assert FloatFormat(4, 3, specials=Specials.FNUZ).bias == 8
    assert FloatFormat(5, 2, specials=Specials.FNUZ).bias == 16
    assert FloatFormat(4, 3).bias == 7


def test_codes_and_counts():
    bf16 = get_format("bf16")
    assert (bf16.inf_code, bf16.nan_code, bf16.max_magnitude_code) == (0x7F80, 0x7FC0, 0x7F7F)
    e4m3 = get_format("fp8_e4m3")
    assert (e4m3.nan_code, e4m3.max_magnitude_code, e4m3.num_finite) == (0x7F, 0x7E, 254)
    assert get_format("e4m3fnuz").num_finite == 255  # every code but 0x80
    assert get_format("e8m0").num_finite == 255
    assert get_format("fp4").num_finite == 16


def test_dynamic_range_in_binades():
    assert get_format("fp4").binades == pytest.approx(np.log2(6 / 0.5))
    assert get_format("bf16").normal_binades == pytest.approx(
        np.log2(float(get_format("bf16").max_value)) + 126
    )


def test_integer_and_fixed_formats():
    assert (IntFormat(8).min_value, IntFormat(8).max_value) == (-128, 127)
    assert (IntFormat(4).min_value, IntFormat(4).max_value) == (-8, 7)
    assert (IntFormat(8, signed=False).max_value, IntFormat(1).min_value) == (255, -1)
    assert IntFormat(64).max_value == 2**63 - 1
    q = FixedFormat(3, 4)
    assert (q.bits, q.min_value, q.max_value, q.resolution) == (
        8,
        -8,
        Fraction(127, 16),
        Fraction(1, 16),
    )


def test_formats_are_frozen_values():
    assert FloatFormat(8, 7) == get_format("bfloat16")
    assert hash(FloatFormat(8, 7)) == hash(get_format("bf16"))
    with pytest.raises(AttributeError):
        FloatFormat(8, 7).bias = 3


@pytest.mark.parametrize(
    "make",
    [
        lambda: FloatFormat(0, 3),
        lambda: FloatFormat(4, -1),
        lambda: FloatFormat(5, 0),  # IEEE needs a mantissa bit to tell NaN from inf
        lambda: FloatFormat(12, 60),
        lambda: IntFormat(0),
        lambda: IntFormat(65),
        lambda: FixedFormat(40, 40),
    ],
    ids=["no-exponent", "negative-mantissa", "ieee-m0", "too-wide", "int0", "int65", "q-too-wide"],
)
def test_impossible_formats_are_refused(make):
    with pytest.raises(NumfmtError):
        make()
