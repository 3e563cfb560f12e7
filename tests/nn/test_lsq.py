"""LSQ against the paper's formulas, on cases worked by hand."""

import math

import pytest
import torch

from numfmt.errors import NumfmtError
from numfmt.nn.lsq import grad_scale, lsq_init, lsq_quantize


def test_the_gradients_are_the_papers_on_a_hand_worked_case():
    v = torch.tensor([-1.0, 0.26, 0.9], requires_grad=True)
    s = torch.tensor(0.25, requires_grad=True)
    out = lsq_quantize(v, s, bits=3)  # Qn = Qp = 3; v / s = -4, 1.04, 3.6
    assert out.tolist() == [-0.75, 0.25, 0.75]
    out.sum().backward()
    assert v.grad.tolist() == [0.0, 1.0, 0.0]  # clipped below and above: no gradient
    # below: -Qn; inside: round(1.04) - 1.04; above: Qp; times g = 1 / sqrt(3 * 3)
    expected = (-3 + (1 - 1.04) + 3) / math.sqrt(3 * 3)
    assert s.grad.item() == pytest.approx(expected, rel=1e-6)


def test_a_scale_per_channel_gets_its_rows_gradient():
    v = torch.tensor([[0.3, -0.7, 2.0], [0.05, 0.1, -0.1]], requires_grad=True)
    s = torch.tensor([[0.5], [0.05]], requires_grad=True)
    lsq_quantize(v, s, bits=2, gradient_scale=1.0).sum().backward()  # Qn = Qp = 1
    # row 0: v/s = 0.6, -1.4, 4 -> inside (round 1 - 0.6), below (-1), above (1)
    # row 1: v/s = 1, 2, -2 -> at the top (1), above (1), below (-1)
    assert s.grad[:, 0].tolist() == pytest.approx([0.4 - 1 + 1, 1 + 1 - 1])
    assert v.grad.tolist() == [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]


def test_initial_scale_and_gradient_scale_are_the_papers():
    w = torch.tensor([1.0, -3.0, 2.0, -2.0])
    assert lsq_init(w, bits=4).item() == pytest.approx(2 * 2.0 / math.sqrt(7))
    assert grad_scale(1000, 8) == pytest.approx(1 / math.sqrt(1000 * 127))


def test_bad_lsq_input():
    with pytest.raises(NumfmtError, match="2 to 16 bits"):
        lsq_quantize(torch.ones(3), torch.tensor(0.1), bits=1)
    with pytest.raises(NumfmtError, match="positive"):
        lsq_quantize(torch.ones(3), torch.tensor(0.0))
