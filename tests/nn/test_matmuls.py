"""simulate_matmuls: a model's linear layers through numfmt.arith.matmul's models."""

import numpy as np
import pytest
import torch

from numfmt.arith.matmul import matmul
from numfmt.errors import NumfmtError
from numfmt.eval.compare import compare_recipes
from numfmt.nn import SimulatedLinear, quantize_model, simulate_matmuls
from numfmt.quant import block_operands


def _net(k=100, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(k, 40), torch.nn.ReLU(), torch.nn.Linear(40, 8))


def test_each_linear_layer_multiplies_through_the_model_and_shares_the_weights():
    net = _net()
    x = torch.randn(2, 3, 100)  # a batch of sequences: the leading dimensions are kept
    sim = simulate_matmuls(net, "bf16-accumulate")
    assert isinstance(sim[0], SimulatedLinear) and isinstance(sim[2], SimulatedLinear)
    assert isinstance(net[0], torch.nn.Linear)  # the original is left whole
    assert sim[0].weight.data_ptr() == net[0].weight.data_ptr()  # shared, not copied
    y = sim(x)
    assert y.shape == (2, 3, 8) and y.dtype == torch.float32
    # the first layer's output, computed directly: a @ W^T in the model, plus the bias
    hidden = sim[0](x)
    direct = matmul(
        x.reshape(-1, 100).double().numpy(),
        net[0].weight.detach().double().numpy().T,
        model="bf16-accumulate",
    )
    want = torch.from_numpy(direct).float().reshape(2, 3, 40) + net[0].bias.detach()
    assert torch.equal(hidden, want)
    assert not torch.equal(hidden, net[0](x))  # bf16 accumulation is not float32's


def test_fp8_models_scale_operands_per_token_and_channel_by_default():
    net = _net()
    x = torch.randn(5, 100)
    layer = simulate_matmuls(net[0], "hopper-fp8")
    assert layer.scaling == "row"
    qa, qb, scales = block_operands(
        x.double().numpy(), net[0].weight.detach().double().numpy().T, "row"
    )
    qa, qb = np.pad(qa, ((0, 0), (0, 28))), np.pad(qb, ((0, 28), (0, 0)))  # K 100 -> 128
    want = matmul(qa, qb, scales=scales, model="hopper-fp8")
    got = layer(x) - net[0].bias.detach()
    assert np.allclose(got.detach().numpy(), want, rtol=1e-6, atol=1e-6)
    assert simulate_matmuls(net[0], "bf16-accumulate").scaling is None
    assert simulate_matmuls(net[0], "hopper-fp8", scaling="deepseek").scaling == "deepseek"


def test_promotion_recovers_what_the_fp8_accumulator_loses_in_a_long_layer():
    torch.manual_seed(3)
    layer = torch.nn.Linear(4096, 16, bias=False)
    torch.nn.init.uniform_(layer.weight, 0.0, 1.0)
    x = torch.rand(4, 4096)
    exact = x.double() @ layer.weight.detach().double().T
    errors = {}
    for name in ("hopper-fp8", "hopper-fp8-promote128", "fp32"):
        y = simulate_matmuls(layer, name)(x).double()
        errors[name] = ((y - exact).abs() / exact.abs()).max().item()
    # the inputs' FP8 rounding is the same for both FP8 models: only the accumulator differs
    assert errors["hopper-fp8"] > 5 * errors["hopper-fp8-promote128"]
    assert errors["fp32"] < 1e-5


def test_gradients_are_the_float_layers():
    layer = _net()[0]
    x = torch.randn(4, 100, requires_grad=True)
    y = simulate_matmuls(layer, "bf16-accumulate")(x)
    assert not torch.equal(y, layer(x))  # the forward value is the simulated one
    (y * torch.arange(40.0)).sum().backward()
    x2 = x.detach().clone().requires_grad_()
    weight_grad = layer.weight.grad.clone()
    layer.weight.grad = None
    (layer(x2) * torch.arange(40.0)).sum().backward()
    assert torch.allclose(x.grad, x2.grad) and torch.allclose(weight_grad, layer.weight.grad)


def test_a_changed_weight_is_scaled_again():
    layer = _net()[0]
    sim = simulate_matmuls(layer, "hopper-fp8")
    x = torch.randn(3, 100)
    before = sim(x)
    with torch.no_grad():
        layer.weight.mul_(2.0)  # in place, as an optimizer's step changes it
    assert torch.allclose(sim(x) - layer.bias, 2 * (before - layer.bias), rtol=1e-6, atol=1e-6)


def test_quantized_layers_compose_with_the_simulated_accumulator(tiny_llama, ids):
    q, _ = quantize_model(tiny_llama, "int8/channel")
    sim = simulate_matmuls(q, "fp32")
    assert sum(isinstance(m, SimulatedLinear) for m in sim.modules()) == 15  # 7 a layer + head
    with torch.no_grad():
        a, b = q(ids).logits, sim(ids).logits
    assert torch.allclose(a, b, atol=1e-4)  # fp32 accumulation in another order


def test_compare_adds_a_row_per_recipe_and_matmul_model(tiny_llama):
    ids = torch.randint(0, 96, (1, 64), generator=torch.Generator().manual_seed(2))
    result = compare_recipes(
        tiny_llama, ["fp32", "int4"], ids, context=32, matmuls=["fp32", "bf16-accumulate"]
    )
    rows = {r.recipe: r for r in result.rows}
    assert list(rows) == [
        "fp32",
        "fp32 @ fp32",
        "fp32 @ bf16-accumulate",
        "int4",
        "int4 @ fp32",
        "int4 @ bf16-accumulate",
    ]
    assert rows["fp32 @ fp32"].matmul == "fp32" and rows["int4"].matmul is None
    assert rows["fp32 @ fp32"].kl < 1e-6 < rows["fp32 @ bf16-accumulate"].kl
    assert rows["int4 @ fp32"].bits_per_weight == rows["int4"].bits_per_weight


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: simulate_matmuls(_net(), "h100"), "unknown"),
        (lambda: simulate_matmuls(_net(), "fp32", scaling="mxfp9"), "unknown scaling"),
        (lambda: simulate_matmuls(torch.nn.ReLU(), "fp32"), "no linear layer"),
        (lambda: compare_recipes(_net(), ["fp32"], None, matmuls=["fp32", "fp32"]), "twice"),
        (lambda: simulate_matmuls(_net(), "fp32")(torch.randn(2, 99)), "99 features"),
        (
            lambda: simulate_matmuls(_net(), "hopper-fp8", scaling="none")(
                torch.full((1, 100), 1000.0)
            ),
            "0: a holds values beyond",
        ),
    ],
)
def test_bad_input_is_refused(call, message):
    with pytest.raises(NumfmtError, match=message):
        call()


@pytest.mark.cuda
def test_on_cuda_the_layers_give_the_cpus_bits():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    net = _net()
    x = torch.randn(6, 100)
    for name in ("hopper-fp8", "bf16-accumulate"):
        cpu = simulate_matmuls(net, name)(x)
        gpu = simulate_matmuls(net.to("cuda"), name)(x.to("cuda"))
        net.to("cpu")
        assert gpu.device.type == "cuda" and torch.equal(gpu.cpu(), cpu)
