"""Products with the packed codes (numfmt.nn.packed): against the float64 product with the
exactly decoded weight, within the float32 accumulation bound; the decode bit for bit against
the torch decode; the paths a layer takes, and the ones it cannot."""

import numpy as np
import pytest
import torch

from numfmt import errors
from numfmt.errors import SlowPathWarning
from numfmt.nn import packed
from numfmt.nn.modules import QuantLinear, decoded_weights
from numfmt.quant import quantize_tensor

pytest.importorskip("numba")

SCHEMES = [
    "int8/channel",
    "int8/asym/channel",
    "uint8/channel",
    "int8/group:64",
    "int8",  # per tensor
    "int4/group:128",  # 576 = 4 x 128 + 64: a shorter last group
    "int4/asym/group:32",
    "int4/channel",
    "q4_1",  # minima
    "q8_0",
    "nf4",  # levels from a table
    "fp4/group:32",
    "mxfp4",  # E8M0 scales
    "nvfp4",  # two levels of scales, multiplied
    "fp8_e4m3/channel",
    "mxfp8",
]
U32 = 2.0**-24


def _layer(scheme: str, n_out: int = 37, n_in: int = 576, seed: int = 0) -> QuantLinear:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n_out, n_in, generator=g) * torch.rand(n_out, 1, generator=g)
    return QuantLinear(quantize_tensor(w, scheme), torch.randn(n_out, generator=g))


def _bound(layer: QuantLinear, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The exact product (float64, the weight decoded exactly) and the bound on a float32
    result: K + 2 roundings of the sum of |x| |w| (the order of the additions, the scale, the
    minimum's share), the bias's addition and the output's rounding."""
    w = layer._decode(torch.float64)
    x64 = x.double().reshape(-1, x.shape[-1])
    exact = x64 @ w.T + layer.bias.double()
    parts = w.abs()
    if layer.minimum is not None:  # (q - z) s and m are summed apart
        m = layer.qparams.grouping.expand(layer.minimum.double())
        parts = (w - m).abs() + m.abs()
    mag = x64.abs() @ parts.T
    k = layer.in_features
    return exact, (k + 4) * U32 * (mag + layer.bias.double().abs()) + U32 * exact.abs()


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("rows", [1, 3, packed.DIRECT_ROWS])
def test_the_packed_product_is_the_exact_one_within_float32_accumulation(scheme, rows):
    layer = _layer(scheme)
    lay = layer.layout()
    assert isinstance(lay, packed.Layout) and packed.direct(lay), lay
    x = torch.randn(rows, layer.in_features, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = layer(x)
    exact, bound = _bound(layer, x)
    err = (y.double() - exact).abs()
    assert bool((err <= bound).all()), float((err / bound).max())
    # and the kernel ran: the decode path would round the weight first, a different result
    assert not torch.equal(y, torch.nn.functional.linear(x, layer.dequantized_weight(), layer.bias))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_the_one_pass_decode_gives_the_torch_decode_bit_for_bit(scheme):
    layer = _layer(scheme, n_out=41, n_in=200)
    for dtype in (torch.float32, torch.float64):
        torch_way = (
            layer._decode(dtype)
            if layer._simple and dtype == torch.float32
            else layer._decode(torch.float64).to(dtype)
        )
        assert torch.equal(layer.dequantized_weight(dtype), torch_way)


def test_many_rows_decode_once_a_call_and_use_torchs_matmul():
    layer = _layer("int4/group:128")
    x = torch.randn(2, packed.DIRECT_ROWS, layer.in_features)  # 16 rows
    with torch.no_grad():
        y = layer(x)
    expected = torch.nn.functional.linear(x, layer.dequantized_weight(), layer.bias)
    assert torch.equal(y, expected)


def test_bfloat16_inputs_are_multiplied_in_float32_and_rounded_once():
    layer = _layer("int4/group:128")
    x = torch.randn(2, layer.in_features).to(torch.bfloat16)
    with torch.no_grad():
        y = layer(x)
    assert y.dtype == torch.bfloat16
    exact, bound = _bound(layer, x.float())
    err = (y.double() - exact).abs()
    assert bool((err <= bound + 2.0**-8 * exact.abs()).all())


def test_the_result_does_not_depend_on_the_threads():
    import numba

    layer = _layer("int8/asym/channel", n_out=101)
    x = torch.randn(3, layer.in_features)
    before = numba.get_num_threads()
    try:
        with torch.no_grad():
            numba.set_num_threads(1)
            one = layer(x)
            numba.set_num_threads(max(before, 1))
            many = layer(x)
    finally:
        numba.set_num_threads(before)
    assert torch.equal(one, many)


@pytest.mark.parametrize("n_out", [1, 2, 3, 5, 8])
def test_every_output_row_is_computed_whatever_the_count(n_out):
    layer = _layer("int4/asym/group:32", n_out=n_out, n_in=64)
    x = torch.randn(1, 64)
    with torch.no_grad():
        y = layer(x)
    exact, bound = _bound(layer, x)
    assert bool(((y.double() - exact).abs() <= bound).all())


def test_the_layout_follows_the_buffers_when_they_change():
    layer = _layer("int8/channel", n_out=8, n_in=32)
    x = torch.randn(1, 32)
    with torch.no_grad():
        before = layer(x)
        layer.codes.zero_()  # in place: the kept layout must not be used
        after = layer(x)
    assert not torch.equal(before, after)
    assert torch.equal(after, layer.bias.expand_as(after))


@pytest.mark.parametrize("width", [32, 128])
def test_an_input_of_another_width_gets_torchs_message_not_a_product(width):
    from numfmt.errors import NumfmtError

    layer = _layer("int8/channel", n_out=8, n_in=64)
    x = torch.randn(1, width)
    with pytest.raises(RuntimeError, match="cannot be multiplied"), torch.no_grad():
        layer(x)  # as a Linear says it
    with pytest.raises(NumfmtError, match=f"the input has {width} features"):
        packed.linear(layer.layout(), x)


def test_inputs_that_need_a_gradient_take_the_decode_path():
    layer = _layer("int8/channel", n_out=8, n_in=32)
    x = torch.randn(1, 32, requires_grad=True)
    layer(x).sum().backward()
    assert x.grad is not None
    expected = layer.dequantized_weight().sum(0)
    assert torch.allclose(x.grad, expected)


def test_kernel_layers_keep_no_float_copy_while_generating_and_others_do():
    fast, slow = _layer("int4/group:32"), _layer("int3/channel")
    table = _layer("nf4", n_out=576, n_in=37)  # levels looked up: decoded once instead
    model = torch.nn.Sequential(fast, torch.nn.Linear(37, 576), slow, table)
    x = torch.randn(1, 576)
    with torch.no_grad(), decoded_weights(model):
        y = model(x)
        assert fast._decoded == {} and len(slow._decoded) == 1 and len(table._decoded) == 1
    with torch.no_grad():  # outside the block the table's product runs: near the same
        assert torch.allclose(model(x), y, rtol=1e-4, atol=1e-4)


def test_a_scheme_no_kernel_takes_says_so_once_and_keeps_its_result(monkeypatch):
    monkeypatch.setattr(errors, "_said", set())
    layer = _layer("int3/channel", n_out=8, n_in=64)
    assert "4- and 8-bit codes, not 3-bit" in layer.layout()
    x = torch.randn(1, 64)
    with pytest.warns(SlowPathWarning, match="not 3-bit"), torch.no_grad():
        y = layer(x)
    expected = torch.nn.functional.linear(x, layer.dequantized_weight(), layer.bias)
    assert torch.equal(y, expected)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with torch.no_grad():
            layer(x)  # said once: no second warning


@pytest.mark.parametrize(
    "scheme, n_in, why",
    [
        ("int4/channel", 63, "even input size"),
        ("int3/channel", 64, "4- and 8-bit codes"),
        ("int4/channel:1", 64, "per output channel"),
        ("q5_0", 64, "not 5-bit"),
        ("fp6_e3m2/group:32", 64, "not 6-bit"),
    ],
)
def test_layouts_the_kernels_cannot_take_are_named(scheme, n_in, why):
    layer = _layer(scheme, n_out=8, n_in=n_in)
    lay = layer.layout()
    assert isinstance(lay, str) and why in lay


def test_a_quantized_model_runs_the_kernels_and_stays_near_its_decoded_self(tiny_llama, ids):
    from numfmt.nn import quantize_model

    q, _ = quantize_model(tiny_llama, "int4/group:32")
    layers = [m for m in q.modules() if isinstance(m, QuantLinear)]
    assert layers and all(packed.direct(m.layout()) for m in layers)
    prompt = ids.reshape(-1)[:1][None]
    with torch.no_grad():
        fast = q(prompt).logits  # one row: the packed product
        weights = {m: m.dequantized_weight() for m in layers}
        for m, w in weights.items():  # the same model through the decoded weights
            m.forward = lambda x, m=m, w=w: torch.nn.functional.linear(x, w, m.bias)
        slow = q(prompt).logits
    assert torch.allclose(fast, slow, rtol=1e-4, atol=1e-4)
    assert np.isfinite(fast.numpy()).all()


def test_decode_only_gives_the_decoded_product_bit_for_bit_and_keeps_it():
    layer = _layer("int8/channel")
    x = torch.randn(1, layer.in_features)
    model = torch.nn.Sequential(layer)
    with torch.no_grad(), packed.decode_only(), decoded_weights(model):
        y = layer(x)
        assert len(layer._decoded) == 1
    expected = torch.nn.functional.linear(x, layer.dequantized_weight(), layer.bias)
    assert torch.equal(y, expected)
    with torch.no_grad():
        assert not torch.equal(layer(x), expected)  # outside: the packed product again


@pytest.mark.parametrize("scheme", ["int8/channel", "int4/group:32", "nf4"])
def test_an_embedding_decodes_only_the_rows_it_takes_as_the_table_would(scheme):
    from numfmt.nn.modules import QuantEmbedding

    table = torch.randn(50, 64)
    emb = QuantEmbedding(quantize_tensor(table, scheme))
    ids = torch.tensor([[3, 3, 49], [0, 7, 12]])
    full = emb.dequantized_weight()
    assert torch.equal(emb(ids), full[ids])
    with pytest.raises(IndexError):  # torch's own message for an id outside the table
        emb(torch.tensor([50]))
    with pytest.raises(IndexError):
        emb(torch.tensor([-1]))
