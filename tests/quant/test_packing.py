"""Packing: every order round-trips, and each lays its nibbles where its library does."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from numfmt.errors import NumfmtError
from numfmt.quant import quantize_tensor
from numfmt.quant.packing import ORDERS, pack, packed_size, to_signed, unpack


def test_nibble_orders_by_hand():
    codes = np.arange(32) % 16
    assert pack(codes[:4], 4, "torchao").tolist() == [0x10, 0x32]  # low nibble first
    assert pack(codes[:4], 4, "bitsandbytes").tolist() == [0x01, 0x23]  # high nibble first
    q4 = pack(codes, 4, "ggml_q4_0")
    assert q4[0] == (codes[0] | codes[16] << 4) and q4[15] == (codes[15] | codes[31] << 4)
    assert pack([1, 2, 3, 0], 2, "torchao").tolist() == [0b00111001]
    assert pack([1, 2, 3, 0], 2, "bitsandbytes").tolist() == [0b01101100]


@given(
    codes=st.lists(st.integers(0, 15), min_size=1, max_size=200),
    order=st.sampled_from(["torchao", "bitsandbytes"]),
)
def test_4bit_round_trip(codes, order):
    c = np.array(codes)
    data = pack(c, 4, order)
    assert data.size == packed_size(c.size, 4)
    assert unpack(data, 4, c.size, order).tolist() == codes


@pytest.mark.parametrize(
    ("bits", "order"),
    [
        (2, "torchao"),
        (2, "bitsandbytes"),
        (6, "torchao"),
        (8, "torchao"),
        (16, "torchao"),
        (4, "ggml_q4_0"),
    ],
)
def test_round_trips(bits, order):
    c = np.random.default_rng(0).integers(0, 1 << bits, 96)
    assert np.array_equal(unpack(pack(c, bits, order), bits, c.size, order), c)


def test_fp6_bitstream_packs_four_codes_in_three_bytes():
    data = pack(np.array([0b000001, 0b000010, 0b000011, 0b111111]), 6)
    assert data.size == 3
    assert data[0] == 0b10_000001  # code 0, then the low 2 bits of code 1


def test_signed_int4_codes_pack_as_twos_complement():
    qt = quantize_tensor(np.linspace(-1, 1, 64).reshape(2, 32), "int4")
    data = qt.pack()
    back = to_signed(unpack(data, 4, qt.size), 4).reshape(qt.shape)
    assert np.array_equal(back, qt.codes)


def test_bad_packing_requests():
    with pytest.raises(NumfmtError, match="1 to 32"):
        pack([1], 33)
    with pytest.raises(NumfmtError, match="unknown nibble order"):
        pack([1], 4, "sideways")
    with pytest.raises(NumfmtError, match="blocks of 32"):
        pack(np.zeros(20), 4, "ggml_q4_0")
    assert set(ORDERS) == {"torchao", "bitsandbytes", "ggml_q4_0"}
