"""Activation-aware ranges: the MSE search when every input matters alike, a better weighted
error otherwise, and a network's output kept closer than round-to-nearest's."""

import pytest
import torch
from torch import nn

from numfmt.errors import NumfmtError
from numfmt.nn import quantize_model
from numfmt.nn.algorithms.importance import output_qparams, weighted_qparams
from numfmt.quant import choose_qparams, dequantize, quantize


def _weighted_error(w, qp, a):
    return float((((dequantize(quantize(w, qp), qp) - w.double()) ** 2) * a.double()).sum())


@pytest.mark.parametrize(
    "spec", ["int4/group:32", "int4/asym/group:32", "int3/channel", "int4", "int4/group:48"]
)
def test_equal_importance_is_the_mse_search(spec):
    # group:48 of 128 columns: two whole groups and a last one of 32
    w = torch.randn(16, 128, generator=torch.Generator().manual_seed(0))
    ours = weighted_qparams(w, torch.ones(128), spec, ratios=100, low=0.01)
    theirs = choose_qparams(w, f"{spec}/mse")
    assert torch.equal(ours.scale, theirs.scale)


@pytest.mark.parametrize(
    "spec", ["int4/group:32", "int4/min/group:32", "int3/channel", "int2/asym/channel"]
)
def test_the_weighted_error_is_the_least_of_the_candidates(spec):
    g = torch.Generator().manual_seed(1)
    w = torch.randn(32, 256, generator=g)
    a = torch.rand(256, generator=g) ** 4  # a few inputs matter much more than the rest
    ours = _weighted_error(w, weighted_qparams(w, a, spec), a)
    assert ours <= _weighted_error(w, choose_qparams(w, spec), a)  # min-max is a candidate
    assert ours <= _weighted_error(w, choose_qparams(w, f"{spec}/mse"), a) * (1 + 1e-12)


def _correlated(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=g) * 0.4
    return (torch.randn(n, d, generator=g) @ mix + torch.randn(n, d, generator=g)) * torch.logspace(
        -1, 1, d
    )


@pytest.mark.parametrize(
    "spec", ["int4/group:32", "int3/channel", "int4/asym/group:32", "int4/min/group:32"]
)
def test_output_aware_ranges_beat_the_weights_own_on_held_out_inputs(spec):
    w = torch.randn(64, 128, generator=torch.Generator().manual_seed(4))
    train, held_out = _correlated(5120, 128, seed=5).split([4096, 1024])
    h = 2 * train.T @ train / len(train)

    def error(qp):
        q = dequantize(quantize(w, qp), qp).float()
        return float(((held_out @ (q - w).T) ** 2).mean())

    ours = error(output_qparams(w, h, spec))
    assert ours < error(choose_qparams(w, spec))
    assert ours < error(choose_qparams(w, f"{spec}/mse"))
    # on the calibration inputs themselves it is each channel's best candidate
    qp = output_qparams(w, h, spec)
    d = dequantize(quantize(w, qp), qp).double() - w.double()
    plain = choose_qparams(w, spec)
    d0 = dequantize(quantize(w, plain), plain).double() - w.double()
    assert torch.all(
        torch.sum((d @ h.double()) * d, 1) <= torch.sum((d0 @ h.double()) * d0, 1) + 1e-9
    )


def test_quantize_model_with_an_importance_matrix_keeps_the_output_closer():
    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 8)).eval()
    scale = torch.logspace(-1, 1, 64)  # inputs of very different sizes
    x = torch.randn(3072, 64, generator=torch.Generator().manual_seed(3)) * scale
    calibration, held_out = x.split([2048, 1024])
    rtn, _ = quantize_model(net, "int3/group:16", progress=False)
    ours, report = quantize_model(
        net, "int3/group:16", calibration=calibration, algorithm="imatrix", progress=False
    )
    assert report.recipe == "int3/group:16 + imatrix"
    with torch.no_grad():
        ref = net(held_out)
        assert ((ours(held_out) - ref) ** 2).mean() < 0.9 * ((rtn(held_out) - ref) ** 2).mean()


@pytest.mark.parametrize(
    ("importance", "spec", "kwargs", "message"),
    [
        (torch.ones(7), "int4/channel", {}, "has 7 values"),
        (-torch.ones(8), "int4/channel", {}, "at least zero"),
        (torch.full((8,), float("nan")), "int4/channel", {}, "finite"),
        (torch.ones(8), "nf4", {}, "integer grids"),
        (torch.ones(8), "int4/channel", {"low": 0.0}, "low in"),
        (torch.ones(8), "int4/token", {}, "group of input columns"),
    ],
)
def test_bad_input_gets_one_message(importance, spec, kwargs, message):
    with pytest.raises(NumfmtError, match=message):
        weighted_qparams(torch.randn(4, 8), importance, spec, **kwargs)


def test_output_aware_ranges_refuse_what_they_cannot_use():
    w = torch.randn(4, 8)
    with pytest.raises(NumfmtError, match=r"the Hessian is \(4, 4\)"):
        output_qparams(w, torch.eye(4), "int4/channel")
    with pytest.raises(NumfmtError, match="NaN"):
        output_qparams(w, torch.full((8, 8), float("nan")), "int4/channel")
    with pytest.raises(NumfmtError, match="integer grids"):
        output_qparams(w, torch.eye(8), "fp8_e4m3")
