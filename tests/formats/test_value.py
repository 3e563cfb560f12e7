"""Reading numbers exactly, and writing them back."""

from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest

from numfmt import ExactValue, parse_value
from numfmt.errors import ParseError
from numfmt.formats.value import exact_decimal, parse_code, scientific


@pytest.mark.parametrize(
    ("text", "negative", "magnitude"),
    [
        ("3.14", False, Fraction(157, 50)),
        ("-1.5", True, Fraction(3, 2)),
        ("1e-8", False, Fraction(1, 10**8)),
        (".5", False, Fraction(1, 2)),
        ("+2", False, Fraction(2)),
        ("-0", True, Fraction(0)),
        ("0x1.8p3", False, Fraction(12)),
        ("-0x1p-2", True, Fraction(1, 4)),
        ("0x10", False, Fraction(16)),
        ("0b101.1", False, Fraction(11, 2)),
        ("1/3", False, Fraction(1, 3)),
        ("-22/7", True, Fraction(22, 7)),
        ("2^-10", False, Fraction(1, 1024)),
        ("2**10", False, Fraction(1024)),
        ("1_000", False, Fraction(1000)),
    ],
)
def test_accepted_forms_are_read_exactly(text, negative, magnitude):
    v = parse_value(text)
    assert (v.kind, v.negative, v.magnitude) == ("finite", negative, magnitude)


def test_specials():
    assert parse_value("inf").kind == "inf" and not parse_value("inf").negative
    assert parse_value("-Infinity").negative
    assert parse_value("nan").is_nan


@pytest.mark.parametrize(
    "text", ["", "abc", "1.2.3", "1e", "0x", "0b102", "--1", "1/0", "2^99999999"]
)
def test_unreadable_values_say_which_forms_are_accepted(text):
    with pytest.raises(ParseError):
        parse_value(text)


def test_python_and_numpy_numbers_are_exact():
    assert ExactValue.of(0.1).magnitude == Fraction(0.1)
    assert ExactValue.of(-0.0).negative
    assert ExactValue.of(np.float32(0.1)).magnitude == Fraction(float(np.float32(0.1)))
    assert ExactValue.of(Decimal("0.1")).magnitude == Fraction(1, 10)
    assert ExactValue.of(10**30).magnitude == 10**30
    assert ExactValue.of(float("nan")).is_nan


def test_exact_decimal():
    assert exact_decimal(Fraction(201, 64)) == "3.140625"
    assert exact_decimal(Fraction(-1, 8)) == "-0.125"
    assert exact_decimal(Fraction(1, 3)) is None
    assert exact_decimal(Fraction(2) ** -149).startswith(
        "0.00000000000000000000000000000000000000000000140129846"
    )
    assert Fraction(exact_decimal(Fraction(2) ** -1074)) == Fraction(2) ** -1074


def test_scientific():
    assert scientific(Fraction(1, 1600), 3) == "0.000625"
    assert scientific(Fraction(1, 3), 4) == "0.3333"
    assert scientific(Fraction(2) ** -1074, 5) == "4.9407e-324"
    assert scientific(Fraction(10) ** 400, 3) == "1e+400"


@pytest.mark.parametrize(
    ("text", "code"), [("0x4049", 0x4049), ("0b0_1111_111", 127), ("16457", 16457), ("0o17", 15)]
)
def test_codes(text, code):
    assert parse_code(text) == code


@pytest.mark.parametrize("text", ["-1", "1.5", "0xg", "abc", ""])
def test_bad_codes(text):
    with pytest.raises(ParseError, match="non-negative integer"):
        parse_code(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3,14", "3,14 is not a number: write the decimal point as a dot (3.14)"),
        ("-1,5", "-1,5 is not a number: write the decimal point as a dot (-1.5)"),
        (",5", ",5 is not a number: write the decimal point as a dot (.5)"),
        ("1,5e3", "1,5e3 is not a number: write the decimal point as a dot (1.5e3)"),
        (
            "1,000",
            "1,000 is not a number: write the decimal point as a dot (1.000), "
            "and thousands without a separator (1000)",
        ),
    ],
)
def test_a_decimal_comma_gets_the_number_with_a_dot(text, message):
    with pytest.raises(ParseError) as caught:
        parse_value(text)
    assert str(caught.value) == message


@pytest.mark.parametrize("text", ["1,2,3", "1,5/0", "a,b", ","])
def test_a_comma_that_a_dot_would_not_mend_gets_the_forms(text):
    with pytest.raises(ParseError, match="accepted forms") as caught:
        parse_value(text)
    assert "decimal point" not in str(caught.value)


def test_a_list_of_values_is_read_exactly():
    from numfmt.formats.value import parse_values

    values = parse_values(" 1/3, -2^-10 ,0x1.8p3,-0,inf")
    assert [v.kind for v in values] == ["finite"] * 4 + ["inf"]
    assert [v.fraction for v in values[:4]] == [Fraction(1, 3), -Fraction(1, 1024), 12, 0]
    assert values[3].negative  # -0 keeps its sign


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no numbers given"),
        (" , ", "no numbers given"),
        ("1,,2", "empty place between commas"),
        ("1,2,", "empty place between commas"),
        ("1,x", "cannot read 'x' as a number"),
    ],
)
def test_a_bad_list_of_values_says_what_is_wrong(text, message):
    from numfmt.formats.value import parse_values

    with pytest.raises(ParseError, match=message):
        parse_values(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("8 000 000 000", Fraction(8_000_000_000)),
        ("8\u202f000\u202f000", Fraction(8_000_000)),  # as numfmt prints counts
        ("-10\u2009461", Fraction(-10461)),
        ("1\u00a0000.25", Fraction(4001, 4)),
        ("1 000e3", Fraction(1_000_000)),
    ],
)
def test_digits_grouped_by_spaces_read_as_one_number(text, value):
    v = parse_value(text)
    assert (-1 if v.negative else 1) * v.magnitude == value


@pytest.mark.parametrize("text", ["80 00", "1 5", "12 3456", "1 000 00", "0.000 001", "1  000"])
def test_spaces_that_do_not_group_thousands_are_refused(text):
    with pytest.raises(ParseError, match="cannot read"):
        parse_value(text)


@pytest.mark.parametrize(
    "text", ["1e-10000000", "1e100001", "0x1p-9999999", "2^-100001", "1e9" + "9" * 20]
)
def test_exponents_far_beyond_any_format_are_refused_at_once(text):
    with pytest.raises(ParseError, match=r"exponent .* is out of range"):
        parse_value(text)
    assert parse_value("1e-100000").magnitude == Fraction(1, 10**100000)  # the bound itself reads
