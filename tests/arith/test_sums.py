"""Sums in a format: every order against a step-by-step exact reference (each partial sum an
exact Fraction rounded by tests/reference.py), the figures the literature gives, the exact sum,
numpy's own order, and bad input."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

import numfmt.arith as arith
from numfmt.errors import NumfmtError
from numfmt.formats import get_format
from tests.reference import reference_value


def rounded(x: Fraction, fmt, mode: str) -> Fraction | float:
    r = reference_value(x, fmt, mode, "ieee")
    if isinstance(r, str):
        return {"-0": Fraction(0), "inf": math.inf, "-inf": -math.inf}.get(r, math.nan)
    return r


def radd(a, b, fmt, mode):
    if isinstance(a, float) or isinstance(b, float):  # an infinity
        return a + b
    return rounded(a + b, fmt, mode)


def reference_sum(terms, fmt, mode, order):
    """The sum, each addition exact and then rounded by the reference, in the order named."""
    x = [Fraction(float(t)) for t in terms]
    if order == "sequential":
        acc = Fraction(0)
        for t in x:
            acc = radd(acc, t, fmt, mode)
        return acc
    if order == "kahan":
        acc = comp = Fraction(0)
        for t in x:
            y = radd(t, -comp, fmt, mode)
            s = radd(acc, y, fmt, mode)
            comp = radd(radd(s, -acc, fmt, mode), -y, fmt, mode)
            acc = s
        return acc
    if order.startswith("blocked:"):
        k = int(order.split(":")[1])
        parts = [reference_sum(x[i : i + k], fmt, mode, "sequential") for i in range(0, len(x), k)]
        return reference_sum(parts, fmt, mode, "sequential")
    level = [rounded(t, fmt, mode) if len(x) == 1 else t for t in x]
    while len(level) > 1:
        half = len(level) // 2
        if order == "pairwise":
            pairs = [radd(level[2 * i], level[2 * i + 1], fmt, mode) for i in range(half)]
            level = pairs + level[2 * half :]
        else:  # tree
            n = len(level)
            summed = [radd(level[i], level[n - half + i], fmt, mode) for i in range(half)]
            level = summed + level[half : n - half]
    return level[0]


@pytest.mark.parametrize("order", ["sequential", "pairwise", "tree", "kahan", "blocked:5"])
@pytest.mark.parametrize("mode", ["nearest-even", "nearest-away", "down", "up", "odd"])
@pytest.mark.parametrize("name", ["fp16", "bf16", "fp8_e4m3"])
def test_orders_against_the_exact_reference(order, mode, name):
    """Random terms of every scale, and multiples of 1/8 (sums that land on ties and on
    values of the format, where the running sum's shortcut must fall back to the exact
    remainder)."""
    fmt = get_format(name)
    rng = np.random.default_rng(11)
    half = 2.0 ** -(fmt.mantissa_bits + 1)  # half an ulp at 1
    # float64 sums that land on a value of the format or on a tie while the exact sum does
    # not: only the exact remainder rounds these right
    hard = [[1.0, 2.0**-60], [1.0, -(2.0**-60)], [1.0, half + 2.0**-55], [1.0, half - 2.0**-55]]
    hard += [[-1.0, -half - 2.0**-55], [3.0, 2.0**-60, 2.0**-60, -(2.0**-58)]]
    for n in (1, 2, 3, 7, 16, 37, 60, *(-k for k in range(len(hard)))):
        terms = (
            np.array(hard[-n]) if n <= 0 else rng.standard_normal(n) * 2.0 ** rng.integers(-6, 6, n)
        )
        if n > 7:
            terms[::2] = rng.integers(-40, 41, terms[::2].size) / 8
        got = float(arith.sum(terms, name, order=order, rounding=mode))
        want = float(reference_sum(terms, fmt, mode, order))
        assert got == want or (math.isnan(got) and math.isnan(want)), (n, terms.tolist(), got, want)


def test_the_literatures_figures():
    # Higham: the harmonic series stops growing in fp16 at 7.0859 after 513 terms, in bf16 at
    # 5.0625 after 65
    h = 1 / np.arange(1, 3001)
    fp16 = arith.summation(h, "fp16")
    assert (fp16.stall_index + 1, fp16.values["sequential"]) == (513, 7.0859375)
    bf16 = arith.summation(h, "bf16")
    assert (bf16.stall_index + 1, bf16.values["sequential"]) == (65, 5.0625)
    # addition is not associative
    assert float(arith.sum([0.5, 512, 512.5], "fp16")) == 1025
    assert float(arith.sum([512, 512.5, 0.5], "fp16")) == 1024


def test_kahan_and_pairwise_beat_sequential_on_many_tenths():
    r = arith.summation(np.full(10_000, 0.1), "fp16", orders=("sequential", "pairwise", "kahan"))
    errors = {order: abs(r.error(order)) for order in r.values}
    assert errors["kahan"] <= errors["pairwise"] < errors["sequential"]
    assert r.values["sequential"] == 256.0  # 256 + 0.1 rounds back to 256 in fp16
    assert r.exact == 10_000 * Fraction(0.1)


def test_exact_sum_is_exact():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(5000) * 2.0 ** rng.integers(-200, 200, 5000)
    assert arith.exact_sum(x) == sum(Fraction(v) for v in x.tolist())
    assert arith.exact_sum(np.array([1e308, 1e308, -1e308])) == Fraction(1e308)
    with pytest.raises(NumfmtError, match="inf or NaN"):
        arith.exact_sum([1.0, np.inf])


def test_axis_torch_and_cumsum():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 40)).astype(np.float32)
    rows = arith.sum(x, "bf16", order="pairwise")
    assert rows.shape == (3,)
    assert [float(arith.sum(r, "bf16", order="pairwise")) for r in x] == rows.tolist()
    cols = arith.sum(x, "bf16", axis=0)
    assert cols.tolist() == [float(arith.sum(c, "bf16")) for c in x.T]
    torch = pytest.importorskip("torch")
    assert np.array_equal(
        arith.sum(torch.from_numpy(x), "bf16", order="tree"), arith.sum(x, "bf16", order="tree")
    )
    running = arith.cumsum(x, "bf16")
    assert running.shape == x.shape and np.array_equal(running[:, -1], arith.sum(x, "bf16"))


def test_dot_products():
    a, b = np.array([1e4, 1.0, -1e4]), np.array([1e4, 1.0, 1e4])
    # rounded products: +-1e8 overflow fp16 to +-inf, whose sum is NaN
    assert math.isnan(float(arith.dot(a, b, "fp16")))
    assert math.isinf(float(arith.dot(a, b, "fp16", fused=True)))  # 1e8 rounds to inf at once
    a, b = [-1.0, 1 + 2**-10], [1.0, 1 - 2**-10]
    assert float(arith.dot(a, b, "fp16")) == 0.0
    assert float(arith.dot(a, b, "fp16", fused=True)) == -(2.0**-20)
    x, y = np.arange(1.0, 9.0), np.arange(8.0, 0.0, -1.0)
    assert float(arith.dot(x, y, "fp16", order="pairwise")) == float(x @ y)


def test_numpy_order_reproduces_np_sum():
    rng = np.random.default_rng(0)
    for n in (*range(1, 40), 127, 128, 129, 255, 256, 1000, 8193, 20_000):
        x = (rng.standard_normal(n) * 10.0 ** rng.integers(-3, 4, n)).astype(np.float32)
        assert float(arith.sum(x, "fp32", order="numpy")) == float(np.sum(x)), n
        # a float16 array: the same order in float32, rounded to float16 once at the end
        h = x.astype(np.float16)
        in_fp32 = arith.sum(h, "fp32", order="numpy")
        with np.errstate(over="ignore"):  # large float16 sums overflow to inf, in both
            assert float(arith.round(in_fp32, "fp16")) == float(np.sum(h)), n
    assert math.copysign(1, float(arith.sum(np.array([-0.0]), "fp32", order="numpy"))) == 1


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: arith.sum([1.0], "fp16", order="random"), "unknown summation order"),
        (lambda: arith.sum([1.0], "fp16", order="blocked:0"), "blocked:K"),
        (lambda: arith.sum([1.0], "int8"), "float formats"),
        (lambda: arith.sum(np.ones((2, 2)), "fp16", axis=3), "out of range"),
        (lambda: arith.summation([], "fp16"), "nothing to sum"),
        (lambda: arith.sum([60000.0, 60000.0], "fp16", overflow="error"), "left the range"),
        (lambda: arith.dot([1.0], [1.0], "fp16", order="tree", fused=True), "left to right"),
    ],
    ids=["order", "block", "integer", "axis", "empty", "overflow", "fused-order"],
)
def test_bad_input(call, message):
    with pytest.raises(NumfmtError, match=message):
        call()


def test_axis_none_sums_every_value():
    x = np.arange(12.0).reshape(3, 4)
    assert float(arith.sum(x, "fp16", axis=None)) == float(arith.sum(x.reshape(-1), "fp16"))
    with pytest.raises(NumfmtError, match="one axis at a time"):
        arith.sum(x, "fp16", axis=(0, 1))


@pytest.mark.parametrize("options", [{"daz": True}, {"ftz": True}, {"daz": True, "ftz": True}])
def test_subnormal_options_hold_in_every_order(options):
    """Each addition of a sum treats subnormals as the elementwise add does: the running sum
    equals a loop of arith.add with the same options."""
    rng = np.random.default_rng(5)
    tiny = float(get_format("fp16").min_normal)
    terms = rng.choice([tiny / 4, -tiny / 8, tiny * 1.5, -tiny * 1.25, tiny / 64], 40)
    acc = -0.0
    for t in terms:
        acc = float(arith.add(acc, t, "fp16", **options))
    assert float(arith.sum(terms, "fp16", order="sequential", **options)) == acc
    cumulative = arith.cumsum(terms, "fp16", **options)
    assert float(cumulative[-1]) == acc
    acc, comp = -0.0, 0.0  # Kahan's sum, each of its operations an arith.add
    for t in terms:
        y = float(arith.add(t, -comp, "fp16", **options))
        s = float(arith.add(acc, y, "fp16", **options))
        comp = float(arith.add(float(arith.add(s, -acc, "fp16", **options)), -y, "fp16", **options))
        acc = s
    assert float(arith.sum(terms, "fp16", order="kahan", **options)) == acc
    if options.get("daz"):  # every term a subnormal read as zero: each sum is zero
        subnormal = np.full(300, tiny / 4)
        for order in ("sequential", "kahan", "numpy", "pairwise"):
            assert float(arith.sum(subnormal, "fp16", order=order, **options)) == 0, order


def test_stochastic_sums_draw_for_every_addition():
    """Kahan's four additions and numpy's order each take a draw of their own: their sums
    stay unbiased (an addition without a draw would always round up), and numpy's order
    counts its flags."""
    x = np.full(4096, 1 + 2.0**-9)  # exact sum 4104, between bf16's 4096 and 4128
    for order in ("numpy", "kahan", "pairwise"):
        sums = [
            float(arith.sum(x, "bf16", order=order, rounding="stochastic", seed=s))
            for s in range(60)
        ]
        assert set(sums) <= {4096.0, 4128.0}, order
        assert 0.1 < sums.count(4128.0) / 60 < 0.45, order  # a quarter, expected
    flags = arith.Flags()
    arith.sum(np.full(1000, 0.1), "fp16", order="numpy", flags=flags)
    assert flags.inexact > 900


def test_sums_of_tensors_are_tensors_and_other_edges():
    torch = pytest.importorskip("torch")
    t = torch.tensor([0.5, 512.0, 512.5])
    s = arith.sum(t, "fp16")
    assert isinstance(s, torch.Tensor) and s.shape == () and float(s) == 1025.0
    c = arith.cumsum(t, "fp16")
    assert isinstance(c, torch.Tensor) and c.tolist() == [0.5, 512.5, 1025.0]
    d = arith.dot(t, torch.ones(3), "fp16")
    assert isinstance(d, torch.Tensor) and float(d) == 1025.0
    grid = np.arange(6.0).reshape(2, 3)
    assert arith.cumsum(grid, "fp16", axis=None).tolist() == [0, 1, 3, 6, 10, 15]
    with pytest.raises(NumfmtError, match="do not broadcast"):
        arith.dot(np.ones(3), np.ones(4), "fp16")
    with pytest.raises(NumfmtError, match="a term is NaN, and float4_e2m1fn has no NaN"):
        arith.sum([1.0, math.nan], "fp4")


def test_no_stagnation_is_claimed_for_random_rounding_or_an_infinite_sum():
    tenths = np.full(10_000, 0.1)
    assert arith.summation(tenths, "fp16").stall_index is not None
    assert arith.summation(tenths, "fp16", rounding="stochastic", seed=1).stall_index is None
    assert arith.summation(np.arange(1000.0), "fp16").stall_index is None  # it overflows to inf
