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
    assert pack(codes[:4], 4, "low_first").tolist() == [0x10, 0x32]
    assert pack(codes[:4], 4, "high_first").tolist() == [0x01, 0x23]
    q4 = pack(codes, 4, "ggml")
    assert q4[0] == (codes[0] | codes[16] << 4) and q4[15] == (codes[15] | codes[31] << 4)
    assert pack([1, 2, 3, 0], 2, "low_first").tolist() == [0b00111001]
    assert pack([1, 2, 3, 0], 2, "high_first").tolist() == [0b01101100]


def test_the_libraries_pack_as_their_names_say():
    # torchao's pack_uint4 (torchao/dtypes/uint4.py): uint8_data[::2] << 4 | uint8_data[1::2]
    codes = np.random.default_rng(0).integers(0, 16, 64).astype(np.uint8)
    torchao = (codes[::2] << 4) | codes[1::2]
    assert np.array_equal(pack(codes, 4, "torchao"), torchao)
    # ONNX INT4: "the first element is stored in the 4 least significant bits"
    assert np.array_equal(pack(codes, 4, "onnx"), codes[::2] | (codes[1::2] << 4))
    with pytest.raises(NumfmtError, match="unknown nibble order"):
        pack(codes, 4, "sideways")


@given(
    codes=st.lists(st.integers(0, 15), min_size=1, max_size=200),
    order=st.sampled_from(["low_first", "high_first"]),
)
def test_4bit_round_trip(codes, order):
    c = np.array(codes)
    data = pack(c, 4, order)
    assert data.size == packed_size(c.size, 4)
    assert unpack(data, 4, c.size, order).tolist() == codes


@pytest.mark.parametrize(
    ("bits", "order"),
    [
        (2, "low_first"),
        (2, "high_first"),
        (3, "low_first"),
        (5, "low_first"),
        (6, "low_first"),
        (8, "low_first"),
        (12, "low_first"),
        (16, "low_first"),
        (32, "low_first"),
        (4, "ggml"),
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
        pack(np.zeros(20), 4, "ggml")
    assert set(ORDERS) == {"low_first", "high_first", "ggml"}
