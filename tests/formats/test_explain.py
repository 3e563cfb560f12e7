"""show, compare, info, table: the numbers a person is shown, and their JSON."""

import json
from fractions import Fraction

import pytest
from rich.console import Console

import numfmt
from numfmt import NumfmtError


def test_show_3_14_in_bfloat16_field_by_field():
    r = numfmt.show("3.14", "bf16")
    assert (r.code, r.hex, r.bits_grouped) == (0x4049, "0x4049", "0_10000000_1001001")
    sign, exponent, mantissa = r.fields
    assert (sign.bits, sign.meaning, sign.high) == ("0", "+", 15)
    assert (exponent.value, exponent.meaning, exponent.high, exponent.low) == (
        128,
        "128 - bias 127 = 1",
        14,
        7,
    )
    assert mantissa.meaning == "1 + 73/2^7 = 1.5703125"
    assert r.formula == "(-1)^0 x 2^1 x 1.5703125 = 3.140625"
    assert r.stored.fraction == Fraction(201, 64)
    assert r.abs_error == Fraction(1, 1600)  # 201/64 - 157/50, exactly
    assert r.rel_error == Fraction(1, 1600) / Fraction(157, 50)
    assert r.ulp == Fraction(1, 64) and r.ulp_error == Fraction(64, 1600)
    assert (r.below.code, r.above.code) == (0x4048, 0x404A)
    assert (r.cls, r.event) == ("normal", "rounded up")


def test_decimal_input_is_rounded_once_not_through_float64():
    # 1 + 2^-24 + 2^-80 written in decimal: through float64 it would be the fp32 tie 1 + 2^-24
    # and round to even (1.0); read exactly it is above the tie and rounds up.
    text = str(Fraction(1) + Fraction(1, 2**24) + Fraction(1, 2**80))
    r = numfmt.show(text, "fp32")
    assert r.code == 0x3F800001


def test_json_has_the_documented_keys():
    d = json.loads(numfmt.show("3.14", "bf16").to_json())
    for key in (
        "format",
        "input",
        "code",
        "hex",
        "bits",
        "stored",
        "value",
        "class",
        "abs_error",
        "rel_error",
    ):
        assert key in d
    assert (d["format"], d["input"], d["code"], d["bits"]) == (
        "bfloat16",
        "3.14",
        16457,
        "0100000001001001",
    )
    assert (d["stored"], d["value"], d["class"]) == ("3.140625", 3.140625, "normal")
    assert d["abs_error"] == pytest.approx(0.000625)


def test_json_is_strict_for_nan_and_inf():
    d = json.loads(numfmt.show("1e6", "fp8_e4m3").to_json())
    assert d["value"] == "nan" and d["stored"] == "nan"
    assert json.loads(numfmt.show("inf", "fp16").to_json())["value"] == "inf"


def test_overflow_shows_every_policy():
    r = numfmt.show("1e6", "fp8_e4m3")
    outcomes = {p.policy.value: (p.code, p.error is None) for p in r.policies}
    assert outcomes == {"ieee": (0x7F, True), "saturate": (0x7E, True), "error": (None, False)}
    assert r.event == "overflow -> NaN"


def test_integer_overflow_under_each_policy():
    r = numfmt.show("200", "int8")
    assert r.code is None and "does not fit in int8" in r.refusal
    by_policy = {p.policy.value: p for p in r.policies}
    assert by_policy["wrap"].stored.fraction == -56
    assert by_policy["saturate"].stored.fraction == 127
    assert by_policy["error"].code is None
    wrapped = numfmt.show("200", "int8", overflow="wrap")
    assert (wrapped.code, wrapped.event) == (0xC8, "overflow -> wrapped")


def test_twos_complement_steps():
    r = numfmt.show("-5", "int8")
    assert r.steps == (("5", "0000_0101"), ("invert", "1111_1010"), ("add one", "1111_1011"))
    assert r.formula == "-128 + 123 = -5" and r.bits_grouped == "1111_1011"
    assert numfmt.show("-128", "int8").steps[-1] == ("add one", "1000_0000")


@pytest.mark.parametrize(
    ("value", "fmt", "cls", "event"),
    [
        ("1e-8", "fp16", "zero", "underflow -> 0"),
        ("1e-6", "fp16", "subnormal", "rounded up"),  # 16.78 steps of 2^-24 -> 17
        ("0.5", "fp4", "subnormal", "exact"),
        ("inf", "fp4", "normal", "infinity saturates to the maximum"),
        ("-inf", "fp8_e4m3", "nan", "infinity becomes NaN"),
        ("1e39", "bf16", "inf", "overflow -> inf"),
        ("-0", "fp16", "zero", "exact"),
        ("0.3", "e8m0", "normal", "rounded down"),
        ("-1", "e8m0", "nan", "out of domain -> NaN"),
    ],
)
def test_classes_and_events(value, fmt, cls, event):
    r = numfmt.show(value, fmt)
    assert (r.cls, r.event) == (cls, event)


def test_negative_zero_keeps_its_sign_where_the_format_has_one():
    assert numfmt.show("-0", "fp16").code == 0x8000
    assert numfmt.show("-0", "e4m3fnuz").code == 0x00


def test_neighbours_at_the_edges():
    top = numfmt.show_code(0x7, "fp4")
    assert top.above is None and top.below.value.fraction == 4
    zero = numfmt.show_code(0, "fp16")
    assert (zero.below.code, zero.above.code) == (0x8001, 0x0001)
    assert numfmt.show_code(0x7BFF, "fp16").above.code == 0x7C00  # max -> inf
    assert numfmt.show_code(0, "e8m0").below is None  # no value below 2^-127


def test_show_code_fields_for_specials():
    nan = numfmt.show_code(0x7F, "fp8_e4m3")
    assert nan.cls == "nan" and nan.formula == "NaN" and nan.ulp is None
    assert numfmt.show_code(0xFC00, "fp16").formula == "-inf"


def test_fixed_point():
    r = numfmt.show("-1.5", "q3.4")
    assert r.bits_grouped == "1_110_1000"
    assert r.formula == "(-128 + 104) x 2^-4 = -1.5"


def test_compare_default_formats():
    c = numfmt.compare("3.14")
    assert [r.format.name for r in c.rows] == list(numfmt.formats.explain.DEFAULT_COMPARE)
    assert [str(r.stored) for r in c.rows[1:]] == ["3.140625", "3.140625", "3.25", "3", "3"]


def test_compare_applies_a_policy_only_where_it_fits():
    c = numfmt.compare("300", ["fp8_e4m3", "int8"], overflow="wrap")
    assert c.rows[0].overflow.value == "ieee" and c.rows[1].code == 300 - 256
    assert numfmt.compare("300", ["int8", "e5m2"], overflow="saturate").rows[0].code == 0x7F


def test_info_matches_the_format():
    d = numfmt.info("fp8_e4m3").to_dict()
    assert (d["max"], d["smallest"], d["bias"], d["nan_code"], d["inf_code"]) == (
        448.0,
        2**-9,
        7,
        "0x7F",
        None,
    )
    assert d["smallest_exact"] == "2^-9" and d["aliases"] == ["fp8_e4m3", "e4m3", "e4m3fn"]
    assert numfmt.info("int4").to_dict()["min"] == -8
    assert numfmt.info("q3.4").to_dict()["resolution"] == 0.0625


def test_table_lists_every_code():
    rows = numfmt.table("fp4").rows
    assert [float(v) for _, _, v, _ in rows] == [
        0,
        0.5,
        1,
        1.5,
        2,
        3,
        4,
        6,
        -0.0,
        -0.5,
        -1,
        -1.5,
        -2,
        -3,
        -4,
        -6,
    ]
    assert len(numfmt.table("fp8_e4m3").rows) == 256
    with pytest.raises(NumfmtError, match="8 bits or fewer"):
        numfmt.table("bf16")


def test_formats_list():
    d = numfmt.formats_list().to_dict()
    names = [f["name"] for f in d["formats"]]
    assert names[0] == "float64" and "float8_e8m0fnu" in names and len(names) == 16


@pytest.mark.parametrize(
    "result",
    [
        lambda: numfmt.show("3.14", "bf16"),
        lambda: numfmt.show("200", "int8"),
        lambda: numfmt.compare("0.1"),
        lambda: numfmt.info("e3m3fn"),
        lambda: numfmt.table("fp4"),
        lambda: numfmt.formats_list(),
    ],
    ids=["show", "refused", "compare", "info", "table", "formats"],
)
def test_results_render_in_a_terminal_and_a_notebook(result):
    r = result()
    console = Console(record=True, width=120, color_system=None)
    console.print(r)
    text = console.export_text()
    html = r._repr_html_()
    own = isinstance(r, numfmt.formats.explain.ShowResult | numfmt.formats.explain.CompareResult)
    # show and compare draw their bits as boxes (tests/render); the rest export rich's view
    assert len(text) > 40 and ('class="nf-' in html if own else "<pre" in html)
    assert repr(r).startswith(type(r).__name__ + "(")


def test_terminal_view_shows_the_bits_with_separators():
    console = Console(record=True, width=120, color_system=None)
    console.print(numfmt.show("3.14", "bf16"))
    text = console.export_text()
    assert "0_10000000_1001001" in text and "0x4049" in text and "3.140625" in text
