"""GPTQ: round-to-nearest when the inputs are white, the optimal-brain-surgeon updates of a
slow reference, lower output error than round-to-nearest on held-out inputs, and refusals."""

import numpy as np
import pytest
import torch
from torch import nn

from numfmt.errors import NumfmtError, NumfmtWarning
from numfmt.nn import quantize_model
from numfmt.nn.algorithms.calibration import input_hessians
from numfmt.nn.algorithms.gptq import GPTQ, gptq_weight
from numfmt.quant import choose_qparams, quantize_tensor
from numfmt.quant.granularity import PerAxis

SCHEMES = [
    "int4/group:32",
    "int4/channel",
    "int4",
    "int4/asym/group:32",
    "int4/min/group:32",
    "int8/channel",
    "int3/group:16/mse",
    "int4/group:40",  # 96 columns: two groups of 40 and a last one of 16
]


def _inputs(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=g) * 0.4
    return torch.randn(n, d, generator=g) @ mix + torch.randn(n, d, generator=g)


@pytest.mark.parametrize("spec", SCHEMES)
def test_white_inputs_give_round_to_nearest(spec):
    # H = I: no column's error can be cancelled by another, so GPTQ is plain rounding
    w = torch.randn(24, 96, generator=torch.Generator().manual_seed(1))
    qt = gptq_weight(w, torch.eye(96), spec, damp=0.0)
    ref = quantize_tensor(w, spec)
    assert torch.equal(qt.codes, ref.codes)
    assert torch.equal(qt.qparams.scale, ref.qparams.scale)


def _reference(w, h, spec, damp, act_order):
    """GPTQ as the optimal brain surgeon states it, in numpy float64, one column at a time:
    quantize column i, move every later column by err * Hinv[i, j] / Hinv[i, i], and remove
    i from the inverse explicitly (no Cholesky factor, no blocks)."""
    scheme = choose_qparams(w, spec).scheme
    rows, cols = w.shape
    W = w.double().numpy().copy()
    H = h.double().numpy().copy()
    order = np.argsort(-np.diag(H), kind="stable") if act_order else np.arange(cols)
    H = H + damp * np.mean(np.diag(H)) * np.eye(cols)
    W, H = W[:, order], H[np.ix_(order, order)]
    Hinv = np.linalg.inv(H)
    group = getattr(scheme.granularity, "size", None)
    static = choose_qparams(w, spec)
    per_row = scheme.with_(granularity=PerAxis(0))
    Q = np.zeros_like(W)
    params = {}
    for i in range(cols):
        if group is None:
            qp = static
            s, z = qp.scale.double().numpy(), qp.zero_point
        else:
            g = order[i] // group
            if g not in params:
                if act_order:
                    params[g] = (
                        static.scale[:, g].double().numpy(),
                        None if static.zero_point is None else static.zero_point[:, g],
                    )
                else:
                    qp = choose_qparams(torch.from_numpy(W[:, i : i + group]), per_row)
                    params[g] = (qp.scale.double().numpy(), qp.zero_point)
            s, z = params[g]
        z = np.zeros(rows) if z is None else np.asarray(z, dtype=np.float64).reshape(-1)
        s = np.broadcast_to(np.asarray(s).reshape(-1), (rows,))
        safe = np.where(s > 0, s, np.inf)
        q = np.clip(np.rint(W[:, i] / safe) + 0.0 + z, scheme.qmin, scheme.qmax)
        Q[:, i] = (q - z) * s
        err = (W[:, i] - Q[:, i]) / Hinv[i, i]
        W[:, i:] -= np.outer(err, Hinv[i, i:])
        Hinv = Hinv - np.outer(Hinv[:, i], Hinv[i, :]) / Hinv[i, i]
    return Q[:, np.argsort(order)]


@pytest.mark.parametrize("spec", ["int4/channel", "int4/group:16", "int3/asym/group:16"])
@pytest.mark.parametrize("act_order", [False, True])
def test_the_column_updates_are_the_optimal_brain_surgeons(spec, act_order):
    w = torch.randn(12, 48, generator=torch.Generator().manual_seed(2))
    x = _inputs(400, 48, seed=3)
    h = 2 * x.T @ x / len(x)
    expected = _reference(w, h, spec, 0.01, act_order)
    for block in (7, 128):  # the blocks' lazy updates change nothing
        got = gptq_weight(w, h, spec, damp=0.01, act_order=act_order, block=block)
        values = got.dequantize().double().numpy()
        same = np.isclose(values, expected, rtol=0, atol=1e-9)
        assert same.mean() > 0.99  # a code may flip only where a quotient ties within 1e-9
        assert np.abs(values - expected).max() <= float(got.qparams.scale.max()) + 1e-9


@pytest.mark.parametrize("spec", ["int4/group:32", "int3/channel", "int4/asym/group:32"])
def test_gptq_keeps_the_output_better_than_rounding_on_held_out_inputs(spec):
    w = torch.randn(64, 128, generator=torch.Generator().manual_seed(4))
    train, held_out = _inputs(5120, 128, seed=5).split([4096, 1024])
    h = 2 * train.T @ train / len(train)
    rtn = quantize_tensor(w, spec).dequantize().float()
    for act_order in (False, True):
        got = gptq_weight(w, h, spec, act_order=act_order).dequantize().float()
        error = ((held_out @ (got - w).T) ** 2).mean()
        baseline = ((held_out @ (rtn - w).T) ** 2).mean()
        assert error < 0.8 * baseline, (act_order, float(error / baseline))
    # the codes are the grid's: what they decode to is what GPTQ chose, in the scheme's format
    qt = gptq_weight(w, h, spec)
    assert qt.codes.dtype in (torch.int8, torch.uint8) and str(qt.scheme) == spec


def test_quantize_model_with_gptq_keeps_a_networks_output_closer():
    torch.manual_seed(6)
    net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 16)).eval()
    calibration, held_out = _inputs(6144, 64, seed=7).split([4096, 2048])
    rtn, _ = quantize_model(net, "int3/group:32", progress=False)
    gptq, report = quantize_model(
        net,
        "int3/group:32",
        calibration=[calibration[:2048], calibration[2048:]],
        algorithm="gptq",
        progress=False,
    )
    assert report.recipe == "int3/group:32 + gptq"
    with torch.no_grad():
        ref = net(held_out)
        e_gptq = ((gptq(held_out) - ref) ** 2).mean()
        e_rtn = ((rtn(held_out) - ref) ** 2).mean()
    assert e_gptq < 0.8 * e_rtn
    assert [r.bits_per_weight for r in report.layers] == [4.0, 4.0]  # the same storage as RTN


def test_layers_reading_one_tensor_share_one_hessian(tiny_llama):
    layers = {
        n: tiny_llama.get_submodule(f"model.layers.0.{n}")
        for n in ("self_attn.q_proj", "self_attn.k_proj", "mlp.down_proj")
    }
    ids = torch.randint(0, 96, (2, 32), generator=torch.Generator().manual_seed(8))
    hs = input_hessians(tiny_llama, layers, [ids], progress=False)
    assert hs["self_attn.q_proj"] is hs["self_attn.k_proj"]
    assert hs["mlp.down_proj"].shape == (128, 128)
    # against the inputs captured directly
    seen = []
    handle = layers["mlp.down_proj"].register_forward_pre_hook(
        lambda m, a: seen.append(a[0].detach().reshape(-1, 128).double())
    )
    with torch.no_grad():
        tiny_llama(ids)
    handle.remove()
    x = seen[0]
    assert torch.allclose(hs["mlp.down_proj"], 2 * x.T @ x / len(x), rtol=1e-5, atol=1e-7)


def test_a_singular_hessian_is_dampened_more_and_says_so():
    w = torch.randn(4, 16)
    v = torch.randn(16, 1)
    with pytest.warns(NumfmtWarning, match="not positive definite; dampened by 0.001"):
        qt = gptq_weight(w, v @ v.T, "int4/channel", damp=0.0, name="layer x")
    assert torch.isfinite(qt.dequantize()).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scheme": "nf4"}, "integer grids"),
        ({"scheme": "fp8_e4m3"}, "integer grids"),
        ({"scheme": "mxfp4"}, "integer grids"),
        ({"scheme": "int4/group:32/stochastic"}, "rounds to nearest"),
        ({"hessian": torch.eye(8)}, r"the Hessian is \(8, 8\)"),
        ({"hessian": torch.full((16, 16), float("nan"))}, "NaN"),
        ({"damp": 2.0}, "0 to 1"),
    ],
)
def test_bad_input_gets_one_message(kwargs, message):
    args = {
        "weight": torch.randn(4, 16),
        "hessian": torch.eye(16),
        "scheme": "int4/channel",
    } | kwargs
    with pytest.raises(NumfmtError, match=message):
        gptq_weight(args.pop("weight"), args.pop("hessian"), args.pop("scheme"), **args)


def test_quantize_model_refuses_gptq_without_what_it_needs():
    net = nn.Sequential(nn.Linear(8, 8))
    with pytest.raises(NumfmtError, match="give calibration"):
        quantize_model(net, "int4/channel", algorithm="gptq")
    with pytest.raises(NumfmtError, match="one of rtn, imatrix, output-mse, model-kl, gptq"):
        quantize_model(net, "int4/channel", algorithm="awq", calibration=torch.randn(4, 8))
    with pytest.raises(NumfmtError, match="integer grids"):
        quantize_model(net, "nf4", algorithm="gptq", calibration=torch.randn(4, 8))
    with pytest.raises(NumfmtError, match="damp"):
        GPTQ(damp=-1)
    with pytest.raises(NumfmtError, match="block"):
        GPTQ(block=0)
    unused = nn.ModuleDict({"a": nn.Linear(8, 8), "b": nn.Linear(8, 8)})
    unused.forward = lambda x: unused["a"](x)
    with pytest.raises(NumfmtError, match="saw no input"):
        quantize_model(unused, "int4/channel", algorithm="gptq", calibration=torch.randn(4, 8))


@pytest.mark.cuda
def test_gptq_on_cuda_matches_the_cpu():
    w = torch.randn(32, 128)
    x = _inputs(2048, 128, seed=9)
    h = 2 * x.T @ x / len(x)
    cpu = gptq_weight(w, h, "int4/group:32", act_order=True)
    gpu = gptq_weight(w.cuda(), h.cuda(), "int4/group:32", act_order=True)
    assert gpu.codes.is_cuda
    assert (gpu.codes.cpu() == cpu.codes).float().mean() > 0.999
