"""GGUF's block formats, byte for byte as the gguf package's reference quantizers write them."""

import numpy as np
import pytest

from numfmt.errors import NumfmtError
from numfmt.quant import gguf_bytes as blocks
from numfmt.quant import quantize_tensor

quants = pytest.importorskip("gguf.quants")
from gguf import GGMLQuantizationType as T  # noqa: E402

TYPES = {"q8_0": T.Q8_0, "q4_0": T.Q4_0, "q5_0": T.Q5_0, "q4_1": T.Q4_1, "q5_1": T.Q5_1}


def _weights(dtype=np.float32):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 256)) * np.exp(rng.standard_normal((16, 1)))
    x[0, :32] = 0.0  # an all-zero block
    x[1, :32] = 3.0  # a constant block
    x[2, :32] = np.linspace(-2, 2, 32)  # the extremes tie in magnitude: the first one wins
    x[3, :32] = -np.linspace(-2, 2, 32)
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("kind", list(TYPES))
def test_our_bytes_are_the_reference_bytes(kind, dtype):
    x = _weights(dtype)
    reference = quants.quantize(x, TYPES[kind])
    qt = quantize_tensor(x, kind)
    assert np.array_equal(blocks.to_bytes(qt), reference)
    assert qt.nbytes == reference.nbytes  # storage counted as GGUF lays it out
    # the values: ours exactly, and as float32 what the reference dequantizes
    assert np.array_equal(qt.dequantize(dtype="float32"), quants.dequantize(reference, TYPES[kind]))


@pytest.mark.parametrize("kind", list(TYPES))
def test_torch_tensors_give_the_same_bytes(kind):
    torch = pytest.importorskip("torch")
    x = _weights()
    qt = quantize_tensor(torch.from_numpy(x), kind)
    assert np.array_equal(blocks.to_bytes(qt), quants.quantize(x, TYPES[kind]))


@pytest.mark.parametrize("kind", list(TYPES))
def test_reading_the_bytes_back(kind):
    x = _weights()
    reference = quants.quantize(x, TYPES[kind])
    qt = blocks.from_bytes(reference, kind, x.shape)
    assert np.array_equal(qt.dequantize(dtype="float32"), quants.dequantize(reference, TYPES[kind]))
    assert np.array_equal(blocks.to_bytes(qt), reference)


@pytest.mark.parametrize("kind", ["q4_1", "q8_0", "q4_0"])
def test_requantizing_dequantized_blocks_gives_them_back(kind):
    # what a GGUF model's weights hold: re-quantizing them must return the same bytes
    x = _weights()
    reference = quants.quantize(x, TYPES[kind])
    values = quants.dequantize(reference, TYPES[kind])
    again = quantize_tensor(values, kind)
    assert np.array_equal(blocks.to_bytes(again), quants.quantize(values, TYPES[kind]))
    assert np.array_equal(again.dequantize(dtype="float32"), values)  # the same weights
    # and the same bytes, but for the sign of an all-zero block's zero scale
    same = blocks.to_bytes(again) == reference
    assert same[4:].all() and same[:4, 2:].all()
    if kind == "q4_1":  # an integer zero point cannot: min and scale are floats
        other = quantize_tensor(values, "int4/asym/group:32/scale:fp16").dequantize()
        assert np.abs(other - values).max() > 0


def test_bad_shapes_and_bytes_get_one_message():
    with pytest.raises(NumfmtError, match="multiple of 32"):
        blocks.to_bytes(quantize_tensor(np.ones((2, 40)), "q8_0"))
    with pytest.raises(NumfmtError, match="not a q4_0 tensor"):
        blocks.from_bytes(np.zeros(17, np.uint8), "q4_0", (1, 32))
    with pytest.raises(NumfmtError, match="unknown GGUF block type"):
        blocks.from_bytes(np.zeros(18, np.uint8), "q3_k", (1, 32))
    with pytest.raises(NumfmtError, match="GGUF blocks hold"):
        blocks.to_bytes(quantize_tensor(np.ones((2, 32)), "int8"))
