"""Gradients through the rounding: the straight-through estimator, against its definition."""

import numpy as np
import pytest

from numfmt.errors import NumfmtError
from numfmt.quant import choose_qparams, fake_quantize

torch = pytest.importorskip("torch")

# int2 on the range [-1, 1]: levels -1, 0, 1 (step 1); the grid's range ends half a step out,
# at -1.5 and 1.5: beyond them a value is clipped
RANGE = torch.tensor([[-1.0, 0.0, 0.0, 0.0, 1.0]])
X = [[-2.0, -1.4, 0.2, 1.49, 3.0]]


def test_clipped_ste_passes_the_gradient_inside_the_range_only():
    qp = choose_qparams(RANGE, "int2")
    x = torch.tensor(X, requires_grad=True)
    y = fake_quantize(x, qp)  # ste="clipped" is the default, as in torch.ao
    assert y.tolist() == [[-1.0, -1.0, 0.0, 1.0, 1.0]]
    (y * torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0]])).sum().backward()
    # d/dx of sum(w * fq(x)) is w where x was not clipped, else 0
    assert x.grad.tolist() == [[0.0, 2.0, 3.0, 4.0, 0.0]]


def test_plain_ste_passes_the_gradient_everywhere():
    qp = choose_qparams(RANGE, "int2")
    x = torch.tensor(X, requires_grad=True)
    fake_quantize(x, qp, ste="plain").sum().backward()
    assert x.grad.tolist() == [[1.0] * 5]


def test_the_clip_bounds_are_the_error_reports():
    # asymmetric int4 on [0, 15]: scale 1, zero point 0; the grid ends at -0.5 and 15.5
    qp = choose_qparams(torch.tensor([0.0, 15.0]), "int4/asym")
    x = torch.tensor([-0.6, -0.4, 15.4, 15.6], requires_grad=True)
    fake_quantize(x, qp).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 0.0]
    report = fake_quantize(x.detach(), qp)
    from numfmt.quant import error_report

    assert error_report(x.detach(), report, qparams=qp).clipped_fraction == 0.5


def test_gradients_flow_per_group_and_keep_dtype():
    torch.manual_seed(0)
    w = (torch.randn(8, 64) * 0.1).to(torch.bfloat16).requires_grad_()
    out = fake_quantize(w, "int4/group:32/mse")
    assert out.dtype == torch.bfloat16 and out.requires_grad
    out.float().pow(2).sum().backward()
    assert w.grad is not None and w.grad.dtype == torch.bfloat16
    # where nothing was clipped the gradient is d/dw sum(fq(w)^2) = 2 fq(w)
    qp = choose_qparams(w.detach(), "int4/group:32/mse")
    from numfmt.quant.fake import clipped_mask

    inside = ~clipped_mask(w.detach(), qp)
    expected = torch.where(inside, 2 * out.detach().float(), torch.zeros(()))
    assert torch.allclose(w.grad.float(), expected, rtol=1e-2, atol=1e-3)


def test_the_scale_stays_a_tensor_on_the_device():
    qp = choose_qparams(torch.randn(4, 16), "int8/channel")
    assert isinstance(qp.scale, torch.Tensor) and qp.scale.shape == (4,)
    assert isinstance(qp.effective_scale, torch.Tensor)


def test_no_graph_without_grad_and_a_clear_message_for_a_bad_ste():
    x = torch.randn(4, 8, requires_grad=True)
    with torch.no_grad():
        assert fake_quantize(x, "int8").grad_fn is None
    with pytest.raises(NumfmtError, match="clipped' or 'plain"):
        fake_quantize(x, "int8", ste="straight")
    assert not isinstance(fake_quantize(np.ones(3), "int8"), torch.Tensor)


@pytest.mark.parametrize("spec", ["int8/channel", "uint4/group:16/asym", "int3/full"])
@pytest.mark.parametrize("ste", ["clipped", "plain"])
def test_one_fused_kernel_gives_the_values_and_the_gradient_mask(spec, ste, monkeypatch):
    # the commonest case (min and max ranges, float32) runs one compiled kernel that writes
    # the values and the unclipped mask together: the same as choose_qparams, then the
    # values and clipped_mask of the general path (a grid spanning each row's own min and
    # max clips nothing: the mask is the definition's, computed on the way)
    from numfmt.quant import _kernels
    from numfmt.quant.fake import clipped_mask, fake_values

    fused = _kernels.fake_quantize_minmax
    answers = []
    monkeypatch.setattr(
        _kernels, "fake_quantize_minmax", lambda *a: answers.append(fused(*a)) or answers[-1]
    )
    torch.manual_seed(1)
    w = (torch.randn(256, 160) * torch.rand(256, 1) * 10).requires_grad_()
    y = fake_quantize(w, spec, ste=ste)
    monkeypatch.undo()
    if not answers or answers[0] is None:
        pytest.skip("numba is not installed: no fused kernel")
    assert type(y.grad_fn).__name__ == "FakeQuantizeSTEBackward"
    weights = torch.randn(256, 160)
    (y * weights).sum().backward()
    qp = choose_qparams(w.detach(), spec)
    assert torch.equal(y.detach(), fake_values(w.detach(), qp))
    inside = ~clipped_mask(w.detach(), qp) if ste == "clipped" else torch.ones_like(weights)
    assert torch.equal(w.grad, weights * inside)
