"""W8A8 products through integer matmuls (numfmt.nn.packed.integer_linear): the input codes are
the engine's, the integer sums are exact (checked beside numpy's int64 product, also past
2^24, where float32 sums would round), the result is one float64 rounding of the exact
product, and it stays within float32 accumulation error of the fake-quantized product; the
layers and inputs it cannot take fall back to that product, saying so once."""

import warnings

import numpy as np
import pytest
import torch

from numfmt import errors
from numfmt.errors import SlowPathWarning
from numfmt.nn import packed
from numfmt.nn.modules import QuantLinear
from numfmt.quant import QParams, choose_qparams, parse_scheme, quantize, quantize_tensor

pytest.importorskip("numba")

ACTIVATIONS = ["int8/token", "int8/asym/token", "int8", "int8/asym"]
U32 = 2.0**-24


def _layer(act, bias_mode="float", n_out=37, n_in=200, weight="int8/channel", seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n_out, n_in, generator=g) * torch.rand(n_out, 1, generator=g)
    bias = torch.randn(n_out, generator=g)
    act = parse_scheme(act) if isinstance(act, str) else act
    return QuantLinear(quantize_tensor(w, weight), bias, activations=act, bias_mode=bias_mode)


def _inputs(rows, n_in=200, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, n_in, generator=g) * 3 + torch.rand(rows, 1, generator=g)


def _reference(layer: QuantLinear, x: torch.Tensor) -> np.ndarray:
    """What integer inference computes, from the engine's codes and numpy's int64 product:
    (sum (qx - zx) qw + bias code) * (s_x s_w) in float64, rounded once to float32 (the float
    bias added in float32 after it)."""
    act = layer.activations
    qp = act if isinstance(act, QParams) else choose_qparams(x, act, nan_policy="omit")
    codes = quantize(x, qp).numpy().astype(np.int64)
    zx = np.zeros(1) if qp.zero_point is None else qp.zero_point.numpy().astype(np.int64)
    zx = np.broadcast_to(zx.reshape(-1, 1), (codes.shape[0], 1))
    qw = layer.codes.numpy().astype(np.int64)
    acc = (codes - zx) @ qw.T  # exact integers
    sx = np.broadcast_to(np.asarray(qp.effective_scale, np.float64).reshape(-1, 1), zx.shape)
    s = sx * layer.scale.double().numpy().reshape(1, -1)
    b = layer.bias.double().numpy()
    if layer.bias_mode == "int32":
        bcodes = np.clip(np.round(b / s), -(2.0**31 - 1), 2.0**31 - 1)
        return ((acc + bcodes) * s).astype(np.float32)
    return (acc * s).astype(np.float32) + layer.bias.numpy()


@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("bias_mode", ["float", "int32"])
@pytest.mark.parametrize("rows", [1, 3, packed.DIRECT_ROWS, 20])
def test_the_product_is_integer_inferences_bit_for_bit(act, bias_mode, rows):
    layer = _layer(act, bias_mode)
    x = _inputs(rows)
    y = layer(x)
    assert y.dtype == torch.float32 and y.shape == (rows, 37)
    np.testing.assert_array_equal(y.numpy(), _reference(layer, x))


def test_static_ranges_quantize_with_the_calibrated_scale():
    for scheme in ("int8", "int8/asym"):
        calibration = _inputs(64, seed=5)
        qp = choose_qparams(calibration, scheme)
        layer = _layer(qp, "int32")
        x = _inputs(4) * 1.5  # some values past the calibrated range: they clip
        np.testing.assert_array_equal(layer(x).numpy(), _reference(layer, x))


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_it_stays_within_float32_accumulation_of_the_fake_quantized_product(act):
    layer = _layer(act)
    x = _inputs(5)
    y = layer(x).double()
    with packed.decode_only():
        fake = layer(x).double()
    xf = torch.from_numpy(np.asarray(_fake_inputs(layer, x)))
    mag = xf.abs() @ layer._decode(torch.float64).abs().T + layer.bias.double().abs()
    bound = (layer.in_features + 4) * U32 * mag
    assert (y - fake).abs().le(bound).all()
    assert not torch.equal(y, fake)  # the rounding of float32 sums does differ somewhere


def _fake_inputs(layer, x):
    from numfmt.quant import fake_quantize

    return fake_quantize(x.double(), layer.activations, nan_policy="omit")


def test_the_integer_sum_is_exact_past_float32s_integers():
    """127 * 127 * 1535 + 2 is odd and above 2^24: float32 sums cannot hold it."""
    k = 1536
    w = torch.full((2, k), 127.0)
    w[:, 0] = 1.0
    layer = QuantLinear(
        quantize_tensor(w, "int8/channel"), None, activations=parse_scheme("int8/token")
    )
    x = torch.full((1, k), 127.0)
    x[0, 0] = 2.0
    exact = 2 + 127 * 127 * (k - 1)
    assert exact > 2**24 and exact % 2 == 1
    assert layer.scale.double().eq(1.0).all()  # the codes are the values
    y = layer(x)
    assert y[0, 0].item() == float(np.float32(exact))
    assert layer(x.repeat(9, 1))[8, 0].item() == float(np.float32(exact))  # torch's path too


def test_few_rows_and_many_rows_give_the_same_floats():
    layer = _layer("int8/asym/token", "int32")
    x = _inputs(packed.DIRECT_ROWS + 1)
    many = layer(x)
    few = layer(x[: packed.DIRECT_ROWS])
    assert torch.equal(many[: packed.DIRECT_ROWS], few)


def test_the_input_codes_are_the_engines():
    for act in ("int8/token", "int8/asym/token", "int8"):
        x = _inputs(6)
        codes, scale, zero = packed.input_codes(x, parse_scheme(act))
        qt = quantize_tensor(x, act)
        np.testing.assert_array_equal(codes, qt.codes.numpy())
        want_scale = np.broadcast_to(qt.qparams.effective_scale.double().numpy().reshape(-1), (6,))
        np.testing.assert_array_equal(scale, want_scale)
        zp = qt.qparams.zero_point
        np.testing.assert_array_equal(zero, np.zeros(6) if zp is None else zp.numpy().reshape(-1))


def test_bfloat16_inputs_give_the_float32_inputs_result_rounded_once():
    layer = _layer("int8/token")
    x = _inputs(2).to(torch.bfloat16)
    y = layer(x)
    assert y.dtype == torch.bfloat16
    assert torch.equal(y, layer(x.float()).to(torch.bfloat16))


def _fake_then_weight_only(layer: QuantLinear, x: torch.Tensor) -> torch.Tensor:
    """The fake-quantized product: the inputs fake-quantized, then the weight-only layer."""
    from numfmt.quant import fake_quantize

    plain = QuantLinear(layer.quantized(), layer.bias)
    return plain(fake_quantize(x, layer.activations, nan_policy="omit"))


@pytest.mark.parametrize(
    ("act", "weight", "why"),
    [
        ("int4/token", "int8/channel", "8-bit int inputs"),
        ("int8/token", "int4/group:32", "weights of 8-bit int codes"),
        ("int8/token", "int8/group:64", "symmetric weights scaled per channel or per tensor"),
        ("int8/token", "int8/asym/channel", "symmetric weights scaled per channel or per tensor"),
    ],
)
def test_what_it_cannot_take_falls_back_to_the_fake_quantized_product_and_says_so(
    act, weight, why, monkeypatch
):
    monkeypatch.setattr(errors, "_said", set())
    layer = _layer(act, weight=weight)
    x = _inputs(2)
    with pytest.warns(SlowPathWarning, match=why):
        y = layer(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SlowPathWarning)  # said once
        again = layer(x)
    fake = _fake_then_weight_only(layer, x)
    assert torch.equal(y, fake) and torch.equal(again, fake)


@pytest.mark.parametrize("act", ["int8/token", "int8"])
def test_nan_and_infinity_take_their_codes_as_fake_quantize_does(act):
    """With ``nan_policy="omit"`` NaN takes the zero point's code and infinities clip."""
    layer = _layer(act)
    x = _inputs(3)
    x[1, 4], x[2, 7] = float("nan"), float("inf")
    y = layer(x)
    assert y.isfinite().all()
    np.testing.assert_array_equal(y.numpy(), _reference(layer, x))
    fake = _fake_then_weight_only(layer, x)
    assert torch.allclose(y, fake, rtol=1e-5, atol=1e-4)


def test_inputs_that_need_a_gradient_take_the_fake_quantized_product():
    layer = _layer("int8/token")
    x = _inputs(2).requires_grad_()
    y = layer(x)
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with packed.decode_only():
        assert torch.equal(y.detach(), layer(x.detach()))


# -- the GPU's path: torch's integer matmul ---------------------------------------------------


@pytest.mark.parametrize("act", [*ACTIVATIONS, "static"])
@pytest.mark.parametrize("bias_mode", ["float", "int32"])
@pytest.mark.parametrize("rows", [1, 9, 40])
@pytest.mark.parametrize("n_out,n_in", [(13, 37), (16, 40)])  # padded, and taken as it is
def test_torchs_integer_matmul_gives_the_same_floats(act, bias_mode, rows, n_out, n_in):
    # the path a GPU takes (torch._int_mm, on the CPU here, with the CUDA kernel's padding):
    # uint8 codes shifted into int8, the shift's share added back, the same float64 epilogue
    if act == "static":  # a calibrated range
        act = choose_qparams(_inputs(50, n_in=n_in, seed=7), "int8/asym")
    layer = _layer(act, bias_mode, n_out=n_out, n_in=n_in)
    x = _inputs(rows, n_in=n_in)
    codes, sx, zx = packed.device_input_codes(x, layer.activations)
    host = packed.input_codes(x, layer.activations)
    np.testing.assert_array_equal(codes.numpy(), host[0])
    np.testing.assert_array_equal(sx.numpy(), host[1])
    np.testing.assert_array_equal(zx.numpy(), host[2])
    bias = None
    if bias_mode == "int32":
        bias = layer._int32_bias_codes(sx[:, None])[0]
    sw = layer.scale.double().reshape(-1).expand(n_out)
    if layer.activation_scheme.mapping.value != "asymmetric":
        assert not zx.any()
        zx = None  # as the layer passes them
    y = packed.device_integer_linear(layer.codes, sw, codes, sx, zx, bias)
    lay = layer.layout()
    want = packed.integer_linear(lay, *host, None if bias is None else bias.numpy())
    assert y.dtype == torch.float32
    np.testing.assert_array_equal(y.numpy(), want)


def test_the_weights_the_gpus_integer_matmul_takes_are_the_cpus():
    weights = ("int8/channel", "int8", "int8/asym/channel", "int4/channel", "int8/group:8")
    for weight in (*weights, "int8/group:16"):  # (one group as wide as the row: per channel)
        layer = _layer("int8/token", n_out=4, n_in=16, weight=weight)
        lay = layer.layout()
        host = lay if isinstance(lay, str) else packed.integer(lay)
        assert packed.integer_on_device(layer) == host, weight


def test_inputs_with_a_float_minimum_take_the_fake_quantized_product():
    # a minimum is not an integer zero point: the integer matmul does not take such inputs
    act = parse_scheme("int8/min/token")
    x = _inputs(3)
    assert isinstance(packed.input_codes(x, act), str)
    layer = _layer(act)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SlowPathWarning)
        got = layer(x)
    with packed.decode_only():  # the fake-quantized input by the decoded weight
        want = layer(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4)  # (float32 sums' order)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("act", [*ACTIVATIONS, "static"])
@pytest.mark.parametrize("bias_mode", ["float", "int32"])
def test_cuda_w8a8_layers_compute_the_cpus_floats(act, bias_mode):
    if act == "static":  # a calibrated range, built on the host
        act = choose_qparams(_inputs(50, seed=7), "int8/asym")
    layer = _layer(act, bias_mode)
    x = _inputs(5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SlowPathWarning)  # no fallback on the GPU
        got = layer.cuda()(x.cuda())
    assert got.device.type == "cuda"
    torch.testing.assert_close(got.cpu(), layer.cpu()(x), rtol=0, atol=0)
