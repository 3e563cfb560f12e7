"""Quantization-aware training: layers that train through the rounding, and their conversion."""

import pytest
import torch
from torch import nn

from numfmt.errors import NumfmtError
from numfmt.nn import QuantLinear, packed, quantize_model
from numfmt.nn.lsq import lsq_quantize
from numfmt.nn.qat import QATLinear, convert, prepare_qat
from numfmt.quant import fake_quantize


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))


def test_prepare_swaps_layers_and_trains_through_the_rounding():
    net = _net()
    qat = prepare_qat(net, "int4/channel")
    assert isinstance(qat[0], QATLinear) and isinstance(net[0], nn.Linear)  # a copy
    x = torch.randn(8, 16)
    expected = nn.functional.linear(
        x, fake_quantize(net[0].weight.detach(), "int4/channel"), net[0].bias
    )
    assert torch.allclose(qat[0](x), expected)
    qat(x).sum().backward()
    assert qat[0].weight.grad is not None and qat[0].weight.grad.abs().sum() > 0


def test_qat_lowers_the_loss_of_a_low_bit_network():
    torch.manual_seed(1)
    teacher = _net(2)
    x = torch.randn(256, 16)
    y = teacher(x).detach()
    student = prepare_qat(teacher, "int2/channel", learn_scale=True)
    opt = torch.optim.Adam(student.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = nn.functional.mse_loss(student(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert student[0].scale.grad is not None


def test_convert_gives_the_quantlinear_of_the_trained_weights():
    net = _net()
    x = torch.randn(5, 16)
    converted = convert(prepare_qat(net, "int8/channel"))
    reference, _ = quantize_model(net, "int8/channel")  # untrained: the same codes
    assert isinstance(converted[0], QuantLinear)
    assert torch.equal(converted[0].codes, reference[0].codes)
    assert torch.equal(converted(x), reference(x))
    learned = prepare_qat(net, "int4/channel", learn_scale=True)
    with torch.no_grad():
        learned[0].scale.mul_(0.8)  # as if training had moved it
    deployed = convert(learned)[0]
    expected = lsq_quantize(learned[0].weight.detach(), learned[0].scale.detach(), 4)
    assert torch.equal(deployed.dequantized_weight(), expected)


def test_an_optimizer_step_cannot_carry_a_learned_scale_through_zero():
    # Adam moves a parameter by about its learning rate, an int8 scale is about max|w| / 127:
    # the layer holds the scale at float32's epsilon (as torch.ao's learnable fake quantizer
    # does) instead of failing on the next forward pass
    qat = prepare_qat(_net(), "int8/channel", learn_scale=True)
    layer = qat[0]
    opt = torch.optim.Adam([layer.scale], lr=1.0)
    layer(torch.randn(4, 16)).sum().backward()
    opt.step()  # one step of size ~1 takes some scales below zero
    assert (layer.scale <= 0).any()
    y = layer(torch.randn(4, 16))
    eps = torch.finfo(torch.float32).eps
    assert torch.isfinite(y).all() and (layer.scale >= eps).all()
    assert (layer.scale == eps).any()


def test_qat_refuses_what_it_cannot_train():
    with pytest.raises(NumfmtError, match="LSQ"):
        prepare_qat(_net(), "int4/asym/channel", learn_scale=True)
    with pytest.raises(NumfmtError, match="no Linear"):
        prepare_qat(nn.Sequential(nn.ReLU()), "int8")
    with pytest.raises(NumfmtError, match="prepare_qat first"):
        convert(_net())


def test_observers_track_a_moving_average_of_the_input_range():
    net = _net()
    qat = prepare_qat(net, "int8/channel", activations="int8/asym", momentum=0.5)
    layer = qat[0]
    first, second = torch.rand(32, 16), 3 * torch.rand(32, 16) - 1
    qat.train()
    qat(first)
    assert float(layer.observer.hi) == pytest.approx(float(first.max()))
    qat(second)
    expected = 0.5 * float(first.max()) + 0.5 * float(second.max())
    assert float(layer.observer.hi) == pytest.approx(expected)
    expected_lo = 0.5 * float(first.min()) + 0.5 * float(second.min())
    assert float(layer.observer.lo) == pytest.approx(expected_lo, abs=1e-7)
    # in eval mode the range stays where training left it, and the input is quantized with it
    qat.eval()
    x = 10 * torch.rand(4, 16)
    qp = layer.observer.qparams()
    out = qat[0](x)
    assert float(layer.observer.hi) == pytest.approx(expected)
    reference = nn.functional.linear(fake_quantize(x, qp), layer.quantized_weight(), layer.bias)
    assert torch.equal(out, reference)
    # convert keeps the observed range as the deployed layer's static one
    deployed = convert(qat)[0]
    assert torch.equal(deployed.activations.scale, qp.scale)
    with packed.decode_only():  # the decoded product: the same, bit for bit
        assert torch.equal(deployed(x), reference)
    # the packed int8 product: the same up to the order of float32 additions
    assert torch.allclose(deployed(x), reference, rtol=1e-5, atol=1e-5)


def test_observed_inputs_pass_gradients_inside_the_range_only():
    qat = prepare_qat(_net(), "int8/channel", activations="int4/asym")
    layer = qat[0]
    layer(torch.rand(64, 16))  # sets the range to about [0, 1]
    x = torch.tensor([[0.5] * 15 + [7.0]], requires_grad=True)
    layer.eval()
    layer(x).sum().backward()
    assert x.grad[0, 0] != 0 and x.grad[0, -1] == 0  # 7.0 was clipped


def test_the_plain_estimator_passes_gradients_where_the_clipped_one_stops():
    x = torch.tensor([[0.5] * 15 + [7.0]])
    grads = {}
    for ste in ("clipped", "plain"):
        qat = prepare_qat(_net(), "int8/channel", activations="int4/asym", ste=ste)
        qat[0](torch.rand(64, 16))  # the range: about [0, 1]
        qat[0].eval()
        xi = x.clone().requires_grad_(True)
        qat[0](xi).sum().backward()
        grads[ste] = xi.grad[0, -1].item()
    assert grads["clipped"] == 0 and grads["plain"] != 0
    with pytest.raises(NumfmtError, match="'clipped' or 'plain'"):
        prepare_qat(_net(), "int8/channel", ste="smooth")


def test_per_token_activations_are_not_observed():
    qat = prepare_qat(_net(), "int8/channel", activations="int8/token")
    assert qat[0].observer is None
    x = torch.randn(3, 16)
    expected = nn.functional.linear(
        fake_quantize(x, "int8/token"), qat[0].quantized_weight(), qat[0].bias
    )
    assert torch.equal(qat[0](x), expected)


def test_qat_refuses_layers_it_cannot_train():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 2))
    with pytest.raises(NumfmtError, match=r"'0' names 0 \(Conv2d\)"):
        prepare_qat(net, {"0": "int8/channel", "*": None})
    with pytest.raises(NumfmtError, match="embedding"):
        prepare_qat(_net(), "int8/channel", kinds=["linear", "embedding"])
    with pytest.raises(NumfmtError, match="torch module"):
        prepare_qat("not a model", "int8")
    with pytest.raises(NumfmtError, match="momentum"):
        prepare_qat(_net(), "int8/channel", activations="int8", momentum=0)
    net = _net()
    before = net[0].weight.clone()
    prepare_qat(net, "int2/channel")  # a copy: the model is never changed unless inplace
    assert torch.equal(net[0].weight, before) and isinstance(net[0], nn.Linear)
    assert isinstance(prepare_qat(net, "int2/channel", inplace=True)[0], QATLinear)
    assert isinstance(net[0], QATLinear)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_qat_trains_on_cuda_in_the_model_dtype(dtype):
    net = _net().to("cuda", dtype)
    qat = prepare_qat(net, "int4/channel", activations="int8/asym", learn_scale=True)
    x = torch.randn(64, 16, device="cuda", dtype=dtype)
    opt = torch.optim.SGD(qat.parameters(), lr=1e-2)
    out = qat(x)
    assert out.is_cuda and out.dtype == dtype
    out.float().pow(2).mean().backward()
    assert qat[0].scale.grad.is_cuda and qat[0].weight.grad.dtype == dtype
    opt.step()
    deployed = convert(qat)
    y = deployed(x)
    assert y.is_cuda and y.dtype == dtype
    assert deployed[0].activations.scale.device.type == "cuda"
