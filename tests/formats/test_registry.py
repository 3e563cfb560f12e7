"""Format names: canonical names, aliases, patterns, and the message for unknown ones."""

import pytest

from numfmt import FixedFormat, FloatFormat, IntFormat, Specials, get_format
from numfmt.errors import FormatNameError


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("fp64", "float64"),
        ("fp32", "float32"),
        ("tf32", "tf32"),
        ("fp16", "float16"),
        ("BF16", "bfloat16"),
        ("fp8_e4m3", "float8_e4m3fn"),
        ("e4m3", "float8_e4m3fn"),
        ("fp8_e5m2", "float8_e5m2"),
        ("e5m2", "float8_e5m2"),
        ("float8_e4m3", "float8_e4m3"),
        ("float8_e3m4", "float8_e3m4"),
        ("e4m3fnuz", "float8_e4m3fnuz"),
        ("float8_e5m2fnuz", "float8_e5m2fnuz"),
        ("float8_e4m3b11fnuz", "float8_e4m3b11fnuz"),
        ("fp6_e2m3", "float6_e2m3fn"),
        ("float6_e3m2fn", "float6_e3m2fn"),
        ("fp4", "float4_e2m1fn"),
        ("e2m1fn", "float4_e2m1fn"),
        ("e8m0", "float8_e8m0fnu"),
    ],
)
def test_aliases_resolve_to_canonical_names(name, canonical):
    assert get_format(name).name == canonical


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("e3m3fn", FloatFormat(3, 3, specials=Specials.FN)),
        ("e3m3fnn", FloatFormat(3, 3, specials=Specials.FINITE)),
        ("e2m3fnn", FloatFormat(2, 3, specials=Specials.FINITE)),
        ("e4m3b11fnuz", FloatFormat(4, 3, bias=11, specials=Specials.FNUZ)),
        ("e5m0fnu", FloatFormat(5, 0, specials=Specials.FNU)),
        ("float7_e3m3", FloatFormat(3, 3)),
        ("e11m52", FloatFormat(11, 52)),
        ("int4", IntFormat(4)),
        ("uint8", IntFormat(8, signed=False)),
        ("int64", IntFormat(64)),
        ("q3.4", FixedFormat(3, 4)),
        ("q0.15", FixedFormat(0, 15)),
    ],
)
def test_patterns(name, expected):
    assert get_format(name) == expected


def test_canonical_names_round_trip():
    for name in ["e3m3fn", "e2m3fnn", "e4m3b11fnuz", "e8m0fnu", "e11m52", "int4", "q3.4"]:
        fmt = get_format(name)
        assert get_format(fmt.name) == fmt


def test_custom_finite_only_format_is_named_like_ml_dtypes_when_it_is_one():
    assert get_format("e2m3fnn").name == "float6_e2m3fn"
    assert get_format("e3m3fnn").name == "float7_e3m3fnn"


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("bf61", "bf16"),
        ("float8_e4m3f", "float8_e4m3fn"),
        ("fp8", "fp8_e4m3 or fp8_e5m2"),
        ("nonsense", "numfmt formats"),
        ("float9_e4m3", "says 9 bits"),
    ],
)
def test_unknown_names_say_what_is_close(name, hint):
    with pytest.raises(FormatNameError, match=hint.replace("(", r"\(")):
        get_format(name)
