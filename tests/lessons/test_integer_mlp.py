"""Integer-only inference: the fixed-point multiplier, rounding shifts, a slow Python-integer
reference code for code, agreement with float, and what a narrow accumulator does."""

import itertools
import math
from fractions import Fraction

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from numfmt.errors import NumfmtError
from numfmt.lessons.integer_mlp import (
    fixed_point,
    fixed_points,
    integer_mlp,
    layer_stats,
    requantize,
    rounding_shift,
)


@given(st.floats(min_value=1e-12, max_value=2.0**29, allow_nan=False))
def test_the_fixed_point_multiplier_is_m_to_31_bits(m):
    m0, shift = fixed_point(m)
    assert 2**30 <= m0 < 2**31 and (shift >= 0) == (m < 1)  # a left shift for m >= 1
    step = Fraction(2) ** -(31 + shift)
    assert abs(m0 * step - Fraction(m)) <= step / 2


@given(st.lists(st.floats(min_value=1e-12, max_value=2.0**29), min_size=1, max_size=30))
def test_the_vectorised_fixed_points_are_each_m_to_31_bits(ms):
    m0, shift = fixed_points(torch.tensor(ms, dtype=torch.float64))
    for m, a, n in zip(ms, m0.tolist(), shift.tolist(), strict=True):
        step = Fraction(2) ** -(31 + n)
        assert 2**30 <= a < 2**31 and abs(a * step - Fraction(m)) <= step / 2


def test_fixed_point_refuses_multipliers_out_of_range():
    for bad in (0.0, 2.0**30, -0.1, float("inf"), float("nan")):
        with pytest.raises(NumfmtError, match=r"lies in \(0, 2\^30\)"):
            fixed_point(bad)
        with pytest.raises(NumfmtError, match=r"lies in \(0, 2\^30\)"):
            fixed_points(torch.tensor([0.5, bad], dtype=torch.float64))


def test_a_multiplier_above_one_shifts_left():
    m0, shift = fixed_point(3.0)
    acc = torch.tensor([[5, -7, 100]])
    codes = requantize(acc, torch.tensor([m0]), torch.tensor([shift]), 10, -1000, 1000)
    assert shift == -2 and codes.tolist() == [[25, -11, 310]]  # 3 = 0.75 * 2^2


@given(st.lists(st.integers(-(2**62), 2**62), min_size=1, max_size=20), st.integers(0, 40))
def test_rounding_shift_rounds_half_away_from_zero(values, shift):
    out = rounding_shift(torch.tensor(values), torch.tensor(shift))
    for v, got in zip(values, out.tolist(), strict=True):
        exact = Fraction(v, 2**shift)
        floor = exact.numerator // exact.denominator
        rest = exact - floor
        expected = floor + (1 if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and v > 0) else 0)
        assert got == expected


def _mlp(widths, seed=0):
    torch.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers).eval()


def _python_layer(codes, layer):
    """One integer layer with Python integers only: the slow reference."""
    w = layer.w.tolist()
    out = []
    for row in codes:
        y_row = []
        for c in range(layer.out_features):
            acc = sum((x - layer.z_x) * wc for x, wc in zip(row, w[c], strict=True)) + int(
                layer.b[c]
            )
            product = acc * int(layer.m0[c])
            k = 31 + int(layer.shift[c])
            magnitude = (abs(product) + (1 << (k - 1))) >> k
            y = layer.z_y + (magnitude if product >= 0 else -magnitude)
            y = max(0, min(255, y))
            y_row.append(max(y, layer.z_y) if layer.relu else y)
        out.append(y_row)
    return out


def test_the_integer_pipeline_is_the_python_integer_reference_code_for_code():
    model = _mlp([12, 16, 10, 4])
    calibration = torch.randn(64, 12)
    net = integer_mlp(model, calibration)
    x = torch.randn(5, 12) * 1.5
    codes = net.forward_codes(x)
    reference = codes[0].tolist()
    for layer, got in zip(net.layers, codes[1:], strict=True):
        reference = _python_layer(reference, layer)
        assert got.tolist() == reference
        assert got.dtype == torch.int64 and got.min() >= 0 and got.max() <= 255


def test_the_integer_network_agrees_with_float():
    model = _mlp([32, 64, 64, 10], seed=3)
    calibration = torch.randn(512, 32)
    net = integer_mlp(model, calibration)
    x = torch.randn(400, 32)
    with torch.no_grad():
        ref = model(x).double()
    out = net(x)
    assert (out.argmax(1) == ref.argmax(1)).double().mean() > 0.9
    assert torch.linalg.norm(out - ref) / torch.linalg.norm(ref) < 0.1
    stats = layer_stats(net, x)
    assert [s.in_features for s in stats] == [32, 64, 64]
    for s, layer in zip(stats, net.layers, strict=True):
        # the worst case: every input code 255 away from its zero point, every weight 127
        worst = 255 * 127 * layer.in_features + int(layer.b.abs().max())
        assert s.worst_case_bits == worst.bit_length() + 1 >= 21
        assert s.max_accumulator < 2 ** (s.worst_case_bits - 1)  # the bound holds
        assert s.headroom_bits == pytest.approx(math.log2((2**31 - 1) / s.max_accumulator))
        assert 0 < s.headroom_bits < 31 and s.overflowed == 0 and s.accumulator_bits == 32
    assert all(s.requant_error < 0.6 for s in stats)  # within about half a code of exact


def test_a_sixteen_bit_accumulator_wraps_around():
    model = _mlp([512, 8], seed=5)
    calibration = torch.randn(64, 512) * 3
    wide = integer_mlp(model, calibration)
    with pytest.raises(
        NumfmtError,
        match=r"layer 0's accumulators reach [\d ]+ on the calibration inputs, beyond int16's 32 767",
    ):
        integer_mlp(model, calibration, accumulator_bits=16)
    narrow = integer_mlp(model, calibration, accumulator_bits=16, overflow="wrap")
    x = torch.randn(32, 512) * 3
    acc32 = wide.layers[0].accumulate(wide.quantize_input(x))
    acc16 = narrow.layers[0].accumulate(narrow.quantize_input(x))
    assert acc32.abs().max() > 2**15  # this layer needs more than 16 bits
    assert acc16.abs().max() <= 2**15 and not torch.equal(acc16, acc32)
    assert torch.equal(acc16 % 2**16, acc32 % 2**16)  # the same low bits: a wrap-around
    (stat,) = layer_stats(narrow, x)
    share = float((acc32.abs() > 2**15 - 1).double().mean())
    assert stat.overflowed == pytest.approx(share) and 0 < share < 1
    assert stat.headroom_bits < 0 and stat.accumulator_bits == 16
    assert stat.requant_error > 1  # wrapped accumulators land far from their exact codes


def test_integer_mlp_refuses_what_it_cannot_do():
    model = _mlp([4, 3])
    with pytest.raises(NumfmtError, match=r"nn\.Sequential"):
        integer_mlp(nn.Linear(4, 3), torch.randn(8, 4))
    with pytest.raises(NumfmtError, match="not Conv1d"):
        integer_mlp(nn.Sequential(nn.Conv1d(1, 1, 3)), torch.randn(8, 4))
    with pytest.raises(NumfmtError, match=r"\(samples, 4\)"):
        integer_mlp(model, torch.randn(8, 5))
    with pytest.raises(NumfmtError, match="16, 32 or 64"):
        integer_mlp(model, torch.randn(8, 4), accumulator_bits=8)
    with pytest.raises(NumfmtError, match="'error' or 'wrap'"):
        integer_mlp(model, torch.randn(8, 4), overflow="saturate")


@pytest.mark.cuda
def test_the_integer_network_on_cuda_equals_the_cpu_one_code_for_code():
    model = _mlp([32, 64, 10], seed=4)
    calibration, x = torch.randn(256, 32), torch.randn(100, 32)
    cpu = integer_mlp(model, calibration)
    gpu = integer_mlp(model.cuda(), calibration.cuda())
    assert gpu.layers[0].w.is_cuda and gpu.layers[0].m0.is_cuda
    for a, b in zip(cpu.forward_codes(x), gpu.forward_codes(x.cuda()), strict=True):
        assert b.is_cuda and torch.equal(a, b.cpu())
    assert [s.max_accumulator for s in layer_stats(cpu, x)] == [
        s.max_accumulator for s in layer_stats(gpu, x.cuda())
    ]
