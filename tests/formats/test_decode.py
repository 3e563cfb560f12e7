"""Decoding: every code of every format of 16 bits or fewer against ml_dtypes / numpy."""

from fractions import Fraction

import numpy as np
import pytest

import numfmt
from numfmt import NumfmtError, decode, decode_exact, get_format
from numfmt.formats.registry import NAMED

SMALL = [name for name, f in NAMED.items() if f.bits <= 16]


def _same(ours: np.ndarray, ref: np.ndarray) -> bool:
    """Equal values, NaN where NaN, and the same sign on zeros."""
    nan = np.isnan(ref)
    return bool(
        np.array_equal(np.isnan(ours), nan)
        and np.array_equal(ours[~nan], ref[~nan])
        and np.array_equal(np.signbit(ours[~nan]), np.signbit(ref[~nan]))
    )


@pytest.mark.parametrize("name", SMALL, ids=str)
def test_every_code_decodes_as_ml_dtypes_does(name):
    fmt = get_format(name)
    codes = np.arange(fmt.num_codes, dtype=fmt.code_dtype)
    with np.errstate(invalid="ignore"):
        ref = codes.view(fmt.ml_dtype).astype(np.float64)
    assert _same(decode(codes, fmt), ref)


@pytest.mark.parametrize("name", SMALL, ids=str)
def test_exact_decoding_agrees_with_array_decoding(name):
    fmt = get_format(name)
    codes = range(0, fmt.num_codes, max(1, fmt.num_codes // 4096))
    values = decode(np.array(list(codes), dtype=fmt.code_dtype), fmt)
    for code, value in zip(codes, values, strict=True):
        exact = decode_exact(code, fmt)
        if np.isnan(value):
            assert exact.is_nan
        else:
            assert float(exact) == value and exact.negative == np.signbit(value)


def test_float32_strided_sweep_decodes_as_numpy():
    codes = np.arange(0, 2**32, 65521, dtype=np.uint64).astype(np.uint32)
    with np.errstate(invalid="ignore"):
        ref = codes.view(np.float32).astype(np.float64)
    assert _same(decode(codes, "fp32"), ref)


def test_float64_decodes_as_numpy():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 2**64, size=20000, dtype=np.uint64)
    assert _same(decode(codes, "fp64"), codes.view(np.float64))


def test_tf32_is_the_top_19_bits_of_float32():
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 2**19, size=20000, dtype=np.uint32)
    with np.errstate(invalid="ignore"):
        as_fp32 = (codes << np.uint32(13)).view(np.float32).astype(np.float64)
    assert _same(decode(codes, "tf32"), as_fp32)


def test_wide_custom_format_decodes_exactly():
    fmt = get_format("e8m20")  # 29 bits, every value exact in float64
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 2**29, size=2000, dtype=np.uint32)
    values = decode(codes, fmt)
    for code, value in zip(codes.tolist(), values, strict=True):
        exact = decode_exact(code, fmt)
        assert np.isnan(value) if exact.is_nan else float(exact) == value


def test_integer_decoding_is_twos_complement():
    codes = np.arange(256, dtype=np.uint8)
    assert np.array_equal(decode(codes, "int8"), codes.view(np.int8))
    assert decode(codes, "uint8").tolist() == list(range(256))
    assert decode(np.arange(16), "int4").tolist() == [*range(8), *range(-8, 0)]
    big = np.array([2**63, 2**64 - 1], dtype=np.uint64)
    assert decode(big, "int64").tolist() == [-(2**63), -1]
    assert decode(big, "uint64").tolist() == [2**63, 2**64 - 1]


def test_fixed_point_decoding():
    assert decode([0x18, 0xE8, 0x7F, 0x80], "q3.4").tolist() == [1.5, -1.5, 7.9375, -8.0]


def test_scalars_stay_scalars():
    assert decode(0x4049, "bf16") == 3.140625
    assert np.ndim(decode(0x4049, "bf16")) == 0
    assert decode_exact(0x4049, "bf16").magnitude == Fraction(201, 64)


@pytest.mark.parametrize(
    ("codes", "fmt", "match"),
    [
        (0x1FF, "fp8_e4m3", "does not fit in the 8 bits"),
        (-1, "bf16", "does not fit"),
        ([1.5], "bf16", "non-negative integers"),
        (16, "fp4", "does not fit in the 4 bits"),
    ],
)
def test_bad_codes_are_refused(codes, fmt, match):
    with pytest.raises(NumfmtError, match=match):
        decode(codes, fmt)


def test_large_arrays_use_the_same_table(monkeypatch):
    codes = np.random.default_rng(3).integers(0, 2**16, size=200_000).astype(np.uint16)
    expected = numfmt.formats.decode_table(get_format("bf16"))[codes]
    assert _same(decode(codes, "bf16"), expected)
