"""calc: an expression computed in a format, step by step, agreeing with numfmt.arith's
operations and with exact arithmetic; and the commands calc and sum."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest
from click.testing import CliRunner

import numfmt.arith as arith
from numfmt.arith.calc import calc
from numfmt.cli import main
from numfmt.errors import NumfmtError, ParseError
from numfmt.formats import decode_exact, encode_exact


def test_numbers_go_into_the_format_then_each_operation_rounds_once():
    c = calc("0.1 + 0.2", "fp16")
    a, b = (float(decode_exact(encode_exact(v, "fp16"), "fp16")) for v in ("0.1", "0.2"))
    assert c.value == float(arith.add(a, b, "fp16")) == 0.2998046875
    assert [n.input for n in c.numbers] == ["0.1", "0.2"]
    step = c.steps[0]
    assert step.exact is not None and step.exact.fraction == Fraction(a) + Fraction(b)
    # 0.2999267578125 = 1.0011001100|1 x 2^-2: exactly half an ulp, and ties go to even
    assert step.binary.text() == "1.0011001100 | 1 0 0 x 2^-2"
    assert "a tie" in step.decision and "truncated" in step.decision
    assert step.flags == ("inexact",)
    assert step.shown.hex == "0x34CC"


def test_association_changes_the_answer():
    assert calc("(0.5 + 512) + 512.5", "fp16").value == 1025
    right = calc("0.5 + (512 + 512.5)", "fp16")
    assert right.value == 1024
    assert right.steps[1].alignment[0].startswith("+ 0.0000000000|1 x 2^10")


@pytest.mark.parametrize(
    ("expression", "fmt", "mode"),
    [
        ("1 + 2^-60", "bf16", "down"),
        ("1 - 2^-60", "bf16", "down"),
        ("fma(1 + 2^-10, 1 - 2^-10, -1)", "fp16", "nearest-even"),
        ("sqrt(2) * sqrt(2) - 2", "bf16", "up"),
        ("-(3 / 7) + abs(-0.1)", "fp8_e4m3", "odd"),
        ("1 / 3", "fp16", "nearest-zero"),
    ],
)
def test_steps_agree_with_the_arrays_operations(expression, fmt, mode):
    c = calc(expression, fmt, rounding=mode)
    ops = {"+": "add", "-": "sub", "*": "mul", "/": "div", "fma": "fma", "sqrt": "sqrt"}
    ops.update(abs="abs", neg="neg")
    for s in c.steps:
        want = getattr(arith, ops[s.op])(*[float(v) for v in s.operands], fmt, rounding=mode)
        assert float(s.result) == float(want), s.text
    stored = sum(bool(n.abs_error) for n in c.numbers)  # typed numbers rounded when stored
    assert c.flags.inexact == stored + sum("inexact" in s.flags for s in c.steps)


def test_directed_rounding_sees_a_tiny_term():
    assert calc("1 + 2^-60", "bf16", rounding="down").value == 1.0
    assert calc("1 - 2^-60", "bf16", rounding="down").value == 0.99609375


def test_square_root_is_pictured_but_not_claimed_exact():
    step = calc("sqrt(2)", "bf16").steps[0]
    assert step.exact is None and step.exact_text.startswith("1.41421356237309504880")
    assert step.exact_text.endswith("(irrational)")
    assert calc("sqrt(2.25)", "bf16").steps[0].exact.fraction == Fraction(3, 2)


def test_specials_and_their_reasons():
    c = calc("1/0", "fp8_e4m3")
    assert math.isnan(c.value) and c.flags.divide_by_zero == 1
    assert "no infinity" in c.steps[0].decision and "saturate would give 448" in c.steps[0].decision
    c = calc("1/0 - 1/0", "fp16")
    assert math.isnan(c.value) and c.flags.invalid == 1
    assert math.copysign(1, calc("1 - 1", "fp16", rounding="down").value) == -1


def test_bad_expressions_say_why():
    with pytest.raises(ParseError, match="column"):
        calc("1 + * 2", "fp16")
    with pytest.raises(NumfmtError, match="float formats"):
        calc("1 + 2", "int8")
    with pytest.raises(NumfmtError, match="up to 51 significand bits"):
        calc("1 + 2", "fp64")


@pytest.fixture
def run():
    def invoke(*args):
        return CliRunner().invoke(main, list(args), catch_exceptions=False)

    return invoke


def test_calc_command(run):
    r = run("calc", "0.1 + 0.2", "-f", "fp16")
    assert r.exit_code == 0
    assert "0.2998046875" in r.stdout and "guard 1, round 0, sticky 0" in r.stdout
    data = json.loads(run("calc", "0.1 + 0.2", "-f", "fp16", "--json").stdout)
    assert data["value"] == 0.2998046875 and data["steps"][0]["hex"] == "0x34CC"
    r = run("calc", "-1 + 0.5", "-f", "bf16", "--json")  # a leading minus is no option
    assert r.exit_code == 0 and json.loads(r.stdout)["value"] == -0.5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("calc", "1 + ", "-f", "fp16"), "at the end"),
        (("calc", "os.system(1)", "-f", "fp16"), "cannot read the expression"),
        (("calc", "1 + 1", "-f", "fp99"), "unknown format"),
        (("calc", "1 + 1", "-f", "fp16", "-r", "sideways"), "unknown rounding mode"),
        (("calc", "1/0", "-f", "e2m1", "-o", "error"), "no infinity"),
        (("calc", "nan + 1", "-f", "e2m1"), "no NaN"),
        (("sum", "0.1", "-f", "fp16"), "--count"),
        (("sum", "0.1", "-n", "0", "-f", "fp16"), "--count must be"),
        (("sum", "1", "-n", "5", "-f", "fp16", "--order", "random"), "unknown summation order"),
        (("sum", "missing.npy", "-f", "fp16"), "missing.npy"),
        (("sum", "nan", "-n", "3", "-f", "fp16"), "nothing finite"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else v,
)
def test_bad_input_exits_2_with_one_line(run, args, message):
    r = run(*args)
    assert r.exit_code == 2, r.output
    assert message in r.stderr and "Traceback" not in r.output


def test_sum_command(run, tmp_path):
    r = run("sum", "0.1", "-n", "10000", "-f", "fp16", "--json")
    data = json.loads(r.stdout)
    assert data["orders"]["sequential"]["value"] == 256.0
    assert data["stagnation"]["sum"] == 256.0
    assert abs(data["orders"]["kahan"]["error"]) < 1
    assert "0.0999755859375" in r.stderr  # what each term is
    terms = tmp_path / "h.npy"
    np.save(terms, 1 / np.arange(1, 1001))
    data = json.loads(run("sum", str(terms), "-f", "bf16", "--json").stdout)
    assert data["stagnation"] == {"term": 65, "sum": 5.0625}


def test_sum_plot(run, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "s.png"
    r = run("sum", "0.1", "-n", "3000", "-f", "fp16", "--plot", str(out))
    assert r.exit_code == 0 and out.stat().st_size > 10_000
    again = run("sum", "0.1", "-n", "3000", "-f", "fp16", "--plot", str(out))
    assert again.exit_code == 2 and "exists" in again.stderr


def test_overflow_is_explained_whatever_the_policy_gives():
    for expression, fmt, overflow, value in [
        ("6 * 2", "e2m1", None, 6.0),
        ("448 + 32", "fp8_e4m3", None, math.nan),
        ("65504 + 16", "fp16", "saturate", 65504.0),
        ("65504 + 16", "fp16", None, math.inf),
    ]:
        c = calc(expression, fmt, overflow=overflow)
        step = c.steps[-1]
        assert "beyond the largest finite value" in step.decision, expression
        assert "overflow" in step.flags
        assert c.value == value or (math.isnan(value) and math.isnan(c.value))
    c = calc("-1/0", "e2m1")
    assert "gives -6" in c.steps[0].decision and "saturate would give -6" in c.steps[0].decision
    assert "saturate would" not in calc("1/0", "e2m1", overflow="saturate").steps[0].decision


def test_storing_a_typed_number_counts_its_flags():
    c = calc("1e30 * 1e30", "fp16")
    assert c.flags.overflow >= 1 and math.isinf(c.value)
    assert calc("1e-8 * 1", "fp16").flags.underflow == 1


def test_a_sum_that_keeps_moving_has_no_stagnation():
    rng = np.random.default_rng(1)
    moving = arith.summation(rng.standard_normal(100_000), "fp16")
    stalled = arith.summation(np.full(10_000, 0.1), "fp16")
    assert stalled.stall_index + 1 == 2208 and stalled.stall_value == 256
    assert moving.stall_index is None  # it was still moving at the end
    assert arith.summation(np.full(100, 0.1), "fp16", orders=("pairwise",)).stall_index is None


@pytest.mark.parametrize(("expression", "value"), [("-(1+2)", -3.0), ("-sqrt(4)", -2.0)])
def test_an_expression_may_start_with_a_minus(run, expression, value):
    r = run("calc", expression, "-f", "fp16", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["value"] == value


def test_an_options_negative_value_reaches_the_option(run):
    r = run("calc", "1 + 2", "-f", "fp16", "--seed", "-1")
    assert r.exit_code == 2 and "seed" in r.stderr
    r = run("sum", "0.1", "-n", "-5", "-f", "fp16")
    assert r.exit_code == 2 and "--count must be" in r.stderr


def test_sum_refuses_a_file_of_text(run, tmp_path):
    f = tmp_path / "s.npy"
    np.save(f, np.array(["a", "b"]))
    r = run("sum", str(f), "-f", "fp16")
    assert r.exit_code == 2 and "Traceback" not in r.output


def test_ftz_daz_and_random_bits_reach_every_step():
    flushed = calc("2^-20 * -0.75", "fp16", ftz=True)
    assert flushed.value == 0 and math.copysign(1, flushed.value) == -1
    step = flushed.steps[-1]
    assert "ftz flushes that subnormal result" in step.decision
    assert step.shown.hex == "0x8000"  # the stored bits are the zero's, not the subnormal's
    assert step.abs_error == Fraction(3, 2**22) and step.rel_error == 1  # all of it was lost
    assert flushed.flags.underflow == 1 and flushed.options["ftz"] is True
    assert calc("2^-20 * -0.75", "fp16").value == -(2.0**-20) * 0.75
    zeroed = calc("2^-20 + 1", "fp16", daz=True, rounding="up")
    assert zeroed.value == 1.0  # without daz, up gives the next fp16 after 1
    assert calc("2^-20 + 1", "fp16", rounding="up").value == 1 + 2.0**-10
    assert zeroed.steps[-1].decision.startswith("daz reads the subnormal operand")
    assert zeroed.steps[-1].exact_text == "1"
    # four random bits: 2^-9 past 1 in bf16 is a quarter of an ulp, which four bits hold
    ups = [
        calc("1 + 2^-9", "bf16", rounding="stochastic", random_bits=4, seed=s).value
        for s in range(400)
    ]
    assert 0.18 < ups.count(1.0078125) / 400 < 0.32
    # with one random bit, a quarter of an ulp never rounds up (floor(0.25 * 2) = 0)
    ones = {
        calc("1 + 2^-9", "bf16", rounding="stochastic", random_bits=1, seed=s).value
        for s in range(50)
    }
    assert ones == {1.0}
    step = calc("1 + 2^-9", "bf16", rounding="stochastic", random_bits=1).steps[-1]
    assert "grows with probability 0.25, 0 with 1 random bits" in step.decision


def test_a_context_carries_the_options_and_counts_the_flags():
    ctx = arith.Context("fp16", rounding="up")
    first = calc("1 + 2^-20", ctx)
    assert first.value == 1 + 2.0**-10 and first.rounding.value == "up"
    calc("1 + 2^-20", ctx)
    assert ctx.flags.inexact == 2 and first.flags.inexact == 1
    with pytest.raises(TypeError, match=r"got a Context and options \['ftz'\]"):
        calc("1 + 1", ctx, ftz=True)
    assert calc("1 + 2^-20", ctx, rounding="up", overflow="ieee").value == 1 + 2.0**-10  # agree


def test_calc_and_sum_take_the_subnormal_options(run):
    out = run("calc", "2^-20 * 0.75", "-f", "fp16", "--ftz", "--json")
    data = json.loads(out.stdout)
    assert data["value"] == 0 and data["options"]["ftz"] is True
    r = run("calc", "1 + 1", "-f", "bf16", "--random-bits", "0")
    assert r.exit_code == 2 and "--random-bits" in r.output
    for command in (["calc", "1 + 2^-9"], ["sum", "0.1", "-n", "5"]):
        r = run(*command, "-f", "bf16", "--random-bits", "4")
        assert r.exit_code == 2 and "add -r stochastic" in r.output, command
    tiny = run("sum", "2^-20", "-n", "4", "-f", "fp16", "--daz", "--order", "sequential", "--json")
    assert json.loads(tiny.stdout)["options"] == {"overflow": "ieee", "ftz": False, "daz": True}
    head = run("sum", "0.1", "-n", "9", "-f", "fp16", "-r", "stochastic", "--seed", "5")
    assert head.stdout.splitlines()[0].startswith(
        "9 terms summed in float16, rounding stochastic, seed 5"
    )
    assert json.loads(tiny.stdout)["orders"]["sequential"]["value"] == 0


def test_stochastic_rounding_at_the_top_gives_a_result_or_the_overflow_refusal():
    """65504 + 8 in fp16 lies a quarter ulp past the largest value: rounded down, the step
    says so (probability 0.25 of growing); rounded up, overflow 'error' refuses it."""
    outcomes = set()
    for seed in range(12):
        try:
            r = calc("65504 + 8", "fp16", rounding="stochastic", overflow="error", seed=seed)
        except NumfmtError as exc:
            assert "beyond the range of float16" in str(exc)
            outcomes.add("refused")
        else:
            assert float(r.value) == 65504.0 and "grows with probability 0.25" in str(r)
            outcomes.add("kept")
    assert outcomes == {"kept", "refused"}
