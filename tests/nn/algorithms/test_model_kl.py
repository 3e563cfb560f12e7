"""The model-KL search: a factor kept only when the whole model's KL to float falls, the
quantized model it returns is the one it measured, and the float model is given back."""

import pytest
import torch
from torch import nn

from numfmt.errors import NumfmtError
from numfmt.nn import quantize_model
from numfmt.nn.algorithms.importance import clipped_qparams, output_ratios
from numfmt.nn.algorithms.model_kl import ModelKL, group_of, search_ratios
from numfmt.quant import choose_qparams


def _net(seed: int = 3):
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)
    )
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Linear):
                m.weight *= 3  # confident logits: the KL feels each range
    return net.eval(), torch.randn(1024, 32, generator=torch.Generator().manual_seed(seed))


def _kl(net, q, x) -> float:
    with torch.no_grad():
        ref, logp = torch.log_softmax(net(x), -1), torch.log_softmax(q(x), -1)
    return float((ref.exp() * (ref - logp)).sum(-1).mean())


def test_the_search_lowers_the_kl_and_returns_the_model_it_measured():
    net, x = _net()
    settings = ModelKL(factors=(0.7, 0.8, 0.9, 1.0, 1.1, 1.25), per="layer")
    q, report = quantize_model(net, "int3/channel", calibration=[x], algorithm=settings)
    mse, _ = quantize_model(net, "int3/channel", calibration=[x], algorithm="output-mse")
    search = report.search
    assert search.kl_start == pytest.approx(_kl(net, mse, x), rel=1e-5)
    assert search.kl_end < search.kl_start  # this net gains from a factor
    assert [s.factor for s in search.steps] != [1.0] * 3
    # the deployed model (packed codes) is the one the search scored in float
    assert _kl(net, q, x) == pytest.approx(search.kl_end, rel=1e-5)
    assert search.evaluations == 1 + 3 * 5 and search.tokens == 1024
    assert report.recipe == "int3/channel + model-kl/layer"
    assert report.to_dict()["search"]["kl_end"] == search.kl_end


def test_a_lone_factor_of_one_is_the_output_aware_ranges():
    net, x = _net(0)
    q, report = quantize_model(net, "int4/group:16", calibration=[x], algorithm=ModelKL((1.0,)))
    mse, _ = quantize_model(net, "int4/group:16", calibration=[x], algorithm="output-mse")
    for a, b in zip(q, mse, strict=True):
        if hasattr(a, "codes"):
            assert torch.equal(a.codes, b.codes) and torch.equal(a.scale, b.scale)
    assert report.search.evaluations == 1 and report.search.kl_end == report.search.kl_start


def test_from_min_max_the_factors_are_clip_ratios_and_no_hessian_is_taken(monkeypatch):
    import numfmt.nn.algorithms.chooser as chooser_module

    net, x = _net()

    def no_hessians(*args, **kwargs):
        raise AssertionError("a min-max start takes no Hessian")

    monkeypatch.setattr(chooser_module, "input_hessians", no_hessians)
    settings = ModelKL(factors=(0.6, 0.7, 0.8, 0.9, 1.0), per="model", start="minmax")
    q, report = quantize_model(net, "int3/channel", calibration=[x], algorithm=settings)
    rtn, _ = quantize_model(net, "int3/channel")
    assert report.search.kl_start == pytest.approx(_kl(net, rtn, x), rel=1e-5)
    (step,) = report.search.steps
    assert step.factor < 1.0 and report.search.kl_end < report.search.kl_start
    for layer in (0, 2, 4):  # every range clipped by the one ratio found
        clipped = choose_qparams(net[layer].weight, "int3/channel").scale * step.factor
        assert torch.allclose(q[layer].scale.double().flatten(), clipped.double().flatten())
    assert report.recipe == "int3/channel + model-kl/model/from-minmax"


def test_the_float_weights_are_given_back():
    net, x = _net()
    before = {n: p for n, p in net.named_parameters()}
    copies = {n: p.detach().clone() for n, p in net.named_parameters()}
    layers = {n: (net[int(n)], "linear", _scheme(), net[int(n)].weight) for n in ("0", "2")}
    hessians = {n: x.T @ x if n == "0" else torch.eye(64) for n in layers}
    ratios, search = search_ratios(net, layers, hessians, [x], ModelKL(per="model"))
    assert {n: p for n, p in net.named_parameters()} == before
    assert all(torch.equal(p, copies[n]) for n, p in net.named_parameters())
    assert set(ratios) == {"0", "2"} and not hessians  # the Hessians were freed
    assert all(float(r.max()) <= 1.0 for r in ratios.values())
    assert [s.group for s in search.steps] == ["*"]


def _scheme():
    from numfmt.quant.schemes import parse_scheme

    return parse_scheme("int4/channel")


def test_groups_by_kind_layer_and_model():
    assert group_of("model.layers.3.mlp.up_proj", "kind") == "model.layers.*.mlp.up_proj"
    assert group_of("transformer.h.11.attn.c_proj", "kind") == "transformer.h.*.attn.c_proj"
    assert group_of("0", "kind") == "*"
    assert group_of("layers.2.fc1", "layer") == "layers.2.fc1"
    assert group_of("layers.2.fc1", "model") == "*"


@pytest.mark.parametrize("fixture", ["tiny_llama", "tiny_gpt2"])
def test_transformer_models_group_by_kind(fixture, request, ids):
    model = request.getfixturevalue(fixture)
    q, report = quantize_model(model, "int4/group:32", calibration=[ids], algorithm="model-kl")
    groups = [s.group for s in report.search.steps]
    assert len(groups) == len(set(groups)) and all(".*." in g for g in groups)
    assert sum(s.layers for s in report.search.steps) == len(report.layers)
    assert report.search.kl_end <= report.search.kl_start
    before = torch.log_softmax(model(ids).logits, -1)  # the float model is intact
    assert torch.isfinite(before).all() and torch.isfinite(q(ids).logits).all()


def test_the_report_shows_the_search():
    from rich.console import Console

    net, x = _net()
    _, report = quantize_model(net, "int3/channel", calibration=[x], algorithm="model-kl")
    console = Console(record=True, width=120)
    console.print(report)
    text = console.export_text()
    assert "model-KL search" in text and "KL to float" in text
    assert "model-KL search" in report.search._repr_html_()


@pytest.mark.parametrize(
    "args, message",
    [
        ({"factors": ()}, "factors"),
        ({"factors": (0.9, float("nan"))}, "factors"),
        ({"factors": (-1.0,)}, "factors"),
        ({"per": "block"}, "per is one of"),
        ({"tokens": 0}, "tokens"),
        ({"start": "mse"}, "start is one of"),
    ],
)
def test_bad_settings_are_refused(args, message):
    with pytest.raises(NumfmtError, match=message):
        ModelKL(**args)


def test_bad_use_is_refused():
    net, x = _net()
    with pytest.raises(NumfmtError, match="give calibration"):
        quantize_model(net, "int4/channel", algorithm="model-kl")
    with pytest.raises(NumfmtError, match="model-kl/kind's ranges take integer grids"):
        quantize_model(net, "nf4", calibration=[x], algorithm="model-kl")
    with pytest.raises(NumfmtError, match="one of rtn, imatrix, output-mse, model-kl, gptq"):
        quantize_model(net, "int4/channel", calibration=[x], algorithm="kl")


def test_clip_ratios_scale_each_rows_ranges():
    w = torch.randn(6, 64, generator=torch.Generator().manual_seed(2))
    r = torch.tensor([1.0, 0.5, 0.8, 1.0, 0.9, 0.6])
    for spec in ("int4/group:16", "int4/channel", "int4/asym/group:32"):
        base = choose_qparams(w, spec)
        ours = clipped_qparams(w, spec, r)
        shape = (-1, *([1] * (base.hi.dim() - 1)))
        assert torch.allclose(ours.hi, base.hi * r.double().reshape(shape))
        assert torch.allclose(ours.lo, base.lo * r.double().reshape(shape))
    sym = clipped_qparams(w, "int4/group:16", 0.5)
    assert torch.allclose(sym.scale, choose_qparams(w, "int4/group:16").scale * 0.5)
    with pytest.raises(NumfmtError, match="one clip ratio"):
        clipped_qparams(w, "int4", r)
    with pytest.raises(NumfmtError, match="6 output channels"):
        clipped_qparams(w, "int4/channel", torch.ones(4))
    with pytest.raises(NumfmtError, match="above zero"):
        clipped_qparams(w, "int4/channel", 0.0)
    h = torch.eye(64, dtype=torch.float64)
    assert output_ratios(w, h, "int4").unique().numel() == 1  # per tensor: one ratio


def test_the_kl_is_measured_on_the_first_tokens_asked_for():
    from numfmt.nn.algorithms.model_kl import _first_tokens

    ids = [torch.zeros(8, 512, dtype=torch.long), torch.zeros(8, 512, dtype=torch.long)]
    assert [tuple(b.shape) for b in _first_tokens(ids, 1024)] == [(2, 512)]
    assert [tuple(b.shape) for b in _first_tokens(ids, 5000)] == [(8, 512), (2, 512)]
    rows = [torch.randn(100, 4), torch.randn(100, 4)]
    assert [tuple(b.shape) for b in _first_tokens(rows, 150)] == [(100, 4), (50, 4)]
