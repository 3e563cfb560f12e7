"""Quantization-aware training: layers that train through the rounding, and their conversion."""

import pytest
import torch
from torch import nn

from numfmt.errors import NumfmtError
from numfmt.nn import QuantLinear, quantize_model
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


def test_qat_refuses_what_it_cannot_train():
    with pytest.raises(NumfmtError, match="LSQ"):
        prepare_qat(_net(), "int4/asym/channel", learn_scale=True)
    with pytest.raises(NumfmtError, match="no Linear"):
        prepare_qat(nn.Sequential(nn.ReLU()), "int8")
    with pytest.raises(NumfmtError, match="prepare_qat first"):
        convert(_net())
