"""The integer MLP lesson: one digit's numbers hold together, and the network matches float."""

import json

import pytest

from numfmt.errors import NumfmtError
from numfmt.lessons import integer_walkthrough


def _round_shift(value: int, shift: int) -> int:
    """value / 2^shift to nearest, ties away from zero, with Python integers."""
    half = 1 << (shift - 1)
    magnitude = (abs(value) + half) >> shift
    return -magnitude if value < 0 else magnitude


def test_the_integer_network_is_as_accurate_as_float(walk):
    assert walk.float_accuracy > 0.95
    assert abs(walk.integer_accuracy - walk.float_accuracy) <= 0.02
    assert walk.agreement >= 0.97
    assert walk.label == walk.float_prediction == walk.integer_prediction


def test_each_layer_requantizes_its_accumulators_in_integers(walk):
    assert [(s.in_features, s.out_features, s.relu) for s in walk.steps] == [
        (64, 32, True),
        (32, 32, True),
        (32, 10, False),
    ]
    for i, s in enumerate(walk.steps):
        if i:
            assert s.input_codes == walk.steps[i - 1].output_codes  # codes flow on
        assert all(0 <= c <= 255 for c in s.input_codes + s.output_codes)
        assert all(abs(a) < 2**31 for a in s.accumulators)
        for acc, m0, n, y, m in zip(
            s.accumulators, s.m0, s.shifts, s.output_codes, s.multipliers, strict=True
        ):
            assert 2**30 <= m0 < 2**31
            assert m0 * 2.0 ** -(31 + n) == pytest.approx(m, rel=2**-30)
            code = min(max(s.output_zero + _round_shift(acc * m0, 31 + n), 0), 255)
            if s.relu:
                code = max(code, s.output_zero)
            assert y == code
        for y, v in zip(s.output_codes, s.dequantized, strict=True):
            assert v == pytest.approx((y - s.output_zero) * s.output_scale)
        assert s.max_error < 3 * s.output_scale  # a code or two from the float network


def test_stats_and_json(walk):
    assert [st.accumulator_bits for st in walk.stats] == [32, 32, 32]
    assert all(st.overflowed == 0 and 8 < st.headroom_bits < 31 for st in walk.stats)
    assert walk.stats[0].worst_case_bits == 23  # 64 inputs: 255 * 127 * 64 and the bias
    d = json.loads(walk.to_json())
    assert d["layers"][0]["accumulators"] == walk.steps[0].accumulators
    assert d["integer_accuracy"] == walk.integer_accuracy and len(d["stats"]) == 3


def test_a_sixteen_bit_accumulator_overflows_and_the_lesson_shows_it():
    w = integer_walkthrough(sample=3, accumulator_bits=16)
    first = w.stats[0]
    assert first.overflowed > 0.2 and first.headroom_bits < 0
    assert w.integer_accuracy < 0.5  # wrapped sums: the network is lost
    assert all(abs(a) <= 2**15 for a in w.steps[0].accumulators)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sample": 450}, "0 to 449"),
        ({"sample": -1}, "0 to 449"),
        ({"accumulator_bits": 8}, "16, 32 or 64"),
    ],
)
def test_bad_input_gets_one_message(kwargs, message):
    with pytest.raises(NumfmtError, match=message):
        integer_walkthrough(**kwargs)
