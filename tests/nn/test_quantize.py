"""quantize_model on tiny random Llama and GPT-2 models: layers, Conv1D, packing, patterns, W8A8."""

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from numfmt.errors import NumfmtError, NumfmtWarning
from numfmt.nn import QuantEmbedding, QuantLinear, quantize_model
from numfmt.quant import dequantize, quantize_tensor


def _logits(model, ids):
    with torch.no_grad():
        return model(ids).logits


def test_the_original_is_untouched_and_each_linear_is_replaced(tiny_llama, ids):
    before = {k: v.clone() for k, v in tiny_llama.state_dict().items()}
    q, report = quantize_model(tiny_llama, "int8/channel")
    assert all(torch.equal(before[k], v) for k, v in tiny_llama.state_dict().items())
    assert not any(isinstance(m, QuantLinear) for m in tiny_llama.modules())
    linears = [n for n, m in tiny_llama.named_modules() if isinstance(m, nn.Linear)]
    replaced = [n for n, m in q.named_modules() if isinstance(m, QuantLinear)]
    assert replaced == [n for n in linears if n != "lm_head"] and len(replaced) == 14
    assert [r.name for r in report.layers] == replaced
    assert (
        dict(report.kept)["lm_head"]
        == "excluded by 'lm_head' (its weight is tied to another layer's)"
    )
    ref, out = _logits(tiny_llama, ids), _logits(q, ids)
    assert torch.linalg.norm(out - ref) / torch.linalg.norm(ref) < 0.01
    assert report.bytes_after < report.bytes_before and report.ratio > 1.2


def _storages(model):
    return {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}


def test_the_copy_shares_no_tensor_with_the_original_and_copies_no_weight_it_replaces(
    tiny_llama, monkeypatch
):
    """Round to nearest reads the float weights it replaces in place (they are not copied),
    and the quantized model still shares no tensor with the original."""
    copied = []
    for cls in (torch.Tensor, nn.Parameter):  # a Parameter has a deepcopy of its own

        def counting(t, memo, real=cls.__deepcopy__):
            copied.append(t.numel())
            return real(t, memo)

        monkeypatch.setattr(cls, "__deepcopy__", counting)
    q, _ = quantize_model(tiny_llama, "int8/channel")
    linears = sum(m.weight.numel() for n, m in tiny_llama.named_modules()
                  if isinstance(m, nn.Linear) and n != "lm_head")  # fmt: skip
    total = sum(p.numel() for p in tiny_llama.parameters())
    assert 0 < sum(copied) <= total - linears + 64 * 4  # the embedding, norms, small buffers
    assert not _storages(q) & _storages(tiny_llama)
    # a weight a layer kept in float also holds is copied, not shared
    net = nn.Sequential(nn.Linear(64, 64), nn.Linear(64, 64))
    net[1].weight = net[0].weight
    q2, _ = quantize_model(net, "int8/channel", exclude=("0",))
    assert isinstance(q2[1], QuantLinear) and isinstance(q2[0], nn.Linear)
    assert not _storages(q2) & _storages(net)


def test_a_quantized_layer_holds_the_engines_codes_and_values(tiny_llama):
    q, _ = quantize_model(tiny_llama, "int4/asym/group:32")
    layer = q.model.layers[0].mlp.down_proj
    w = tiny_llama.model.layers[0].mlp.down_proj.weight.detach()
    qt = quantize_tensor(w, "int4/asym/group:32")
    assert layer.codes.dtype == torch.uint8 and layer.codes.numel() == w.numel() // 2  # packed
    assert torch.equal(layer.quantized().codes, qt.codes)
    expected = dequantize(qt.codes, qt.qparams, dtype=torch.float32)
    assert torch.equal(layer.dequantized_weight(), expected)
    x = torch.randn(3, w.shape[1])
    assert torch.allclose(layer(x), x @ expected.T, rtol=0, atol=1e-6)


def test_int8_per_channel_takes_torchs_int8_kernel_for_bfloat16(tiny_llama):
    q, _ = quantize_model(tiny_llama, "int8/channel")
    q = q.to(torch.bfloat16)
    layer = q.model.layers[1].self_attn.q_proj
    assert layer._int8_kernel and layer.codes.dtype == torch.int8
    assert layer.scale.dtype == torch.float32  # the cast left the exact scales alone
    x = torch.randn(4, 7, layer.in_features).to(torch.bfloat16)
    out = layer(x)
    assert out.dtype == torch.bfloat16
    reference = x.double() @ layer.dequantized_weight(torch.float64).T
    assert torch.allclose(out.double(), reference, rtol=0.02, atol=0.02)
    # float32 inputs decode the weight instead (torch's kernel is slow for them)
    y = layer(x.float())
    assert torch.allclose(y, x.float() @ layer.dequantized_weight().T, rtol=1e-5, atol=1e-5)


def test_gpt2_conv1d_is_a_linear_with_its_own_output_axis(tiny_gpt2, ids):
    q, report = quantize_model(tiny_gpt2, "int8/channel")
    conv = [n for n, m in tiny_gpt2.named_modules() if type(m).__name__ == "Conv1D"]
    assert len(conv) == 8
    for name in conv:
        layer = q.get_submodule(name)
        original = tiny_gpt2.get_submodule(name)
        assert isinstance(layer, QuantLinear) and layer.source == "conv1d"
        # Conv1D stores (in, out): one scale per output column of it, per row of the layer
        assert (layer.out_features, layer.in_features) == tuple(original.weight.shape[::-1])
        assert layer.scale.shape == (layer.out_features,)
    # the same model with each Conv1D's weight replaced by its dequantized values
    reference = _with_weights(
        tiny_gpt2, {n: q.get_submodule(n).dequantized_weight().T for n in conv}
    )
    assert torch.allclose(_logits(q, ids), _logits(reference, ids), rtol=1e-4, atol=1e-5)
    assert {r.kind for r in report.layers} == {"conv1d"}


def _with_weights(model, weights):
    import copy

    m = copy.deepcopy(model)
    with torch.no_grad():
        for name, w in weights.items():
            m.get_submodule(name).weight.copy_(w)
    return m


def test_patterns_choose_schemes_the_first_match_wins(tiny_llama):
    recipe = {"*.down_proj": "int8/channel", "*.self_attn.*": None, "*": "int4/group:32"}
    q, report = quantize_model(tiny_llama, recipe)
    schemes = {r.name: r.scheme for r in report.layers}
    assert schemes["model.layers.0.mlp.down_proj"] == "int8/channel"
    assert schemes["model.layers.1.mlp.up_proj"] == "int4/group:32"
    assert not any("self_attn" in n for n in schemes)
    assert isinstance(q.model.layers[0].self_attn.q_proj, nn.Linear)
    kept = dict(report.kept)
    assert kept["model.layers.0.self_attn.q_proj"] == "'*.self_attn.*' keeps it in float"
    _, report = quantize_model(tiny_llama, {"*.mlp.*": "int8"})
    assert dict(report.kept)["model.layers.0.self_attn.q_proj"] == "no pattern matches it"


def test_a_pattern_that_matches_nothing_is_said_with_the_names(tiny_llama):
    with pytest.warns(
        NumfmtWarning, match=r"\*\.qproj match no layer; the layers are: model\.embed_tokens"
    ):
        quantize_model(tiny_llama, {"*.qproj": "int8", "*": "int8/channel"})


def test_embeddings_quantize_when_asked(tiny_llama, ids):
    q, report = quantize_model(tiny_llama, "int8/channel", kinds=("linear", "embedding"))
    emb = q.model.embed_tokens
    assert isinstance(emb, QuantEmbedding)
    # the output head, tied to the embedding, stays float (excluded by default)
    assert isinstance(q.lm_head, nn.Linear)
    looked = emb(ids)
    assert torch.equal(looked, emb.dequantized_weight()[ids])
    assert "model.embed_tokens" in [r.name for r in report.layers]


def test_w8a8_per_token_survives_an_outlier_token_that_per_tensor_does_not():
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(64, 64))
    x = torch.randn(16, 64)
    x[0] *= 500.0  # one token of huge activations
    float_out = net(x).detach()
    errors = {}
    for recipe in ("w8a8-token", "w8a8-tensor"):
        q, _ = quantize_model(net, recipe)
        out = q(x).detach()
        errors[recipe] = float(
            torch.linalg.norm(out[1:] - float_out[1:]) / torch.linalg.norm(float_out[1:])
        )
    assert errors["w8a8-token"] < 0.02 < 0.2 < errors["w8a8-tensor"]


def test_bad_input_gets_one_clear_message(tiny_llama):
    with pytest.raises(NumfmtError, match="torch module"):
        quantize_model(np.zeros(3), "int8")
    with pytest.raises(NumfmtError, match="named recipes"):
        quantize_model(tiny_llama, "int9000/blocks")
    with pytest.raises(NumfmtError, match="no Linear"):
        quantize_model(nn.Sequential(nn.ReLU()), "int8")
    with pytest.raises(NumfmtError, match="static activation ranges"):
        quantize_model(tiny_llama, "int8", calibration=[1, 2])
    with pytest.raises(NumfmtError, match="unknown layer kind"):
        quantize_model(tiny_llama, "int8", kinds=("attention",))


def test_the_report_adds_up(tiny_llama):
    _, report = quantize_model(tiny_llama, "int4/group:32")
    d = report.to_dict()
    assert d["totals"]["quantized_parameters"] == sum(np.prod(r["shape"]) for r in d["layers"])
    # int4 with a float32 scale per 32: 4 + 32/32 = 5 bits a weight
    assert d["totals"]["bits_per_weight"] == pytest.approx(5.0)
    lines = report.to_csv().splitlines()
    assert lines[0].startswith("name,kind,shape,scheme") and len(lines) == 1 + len(report.layers)
    assert all(0 < r.rel_error < 0.2 for r in report.layers)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert report.to_json()


@pytest.mark.parametrize(
    ("recipe", "scale", "zero"),
    [
        ("int4/asym/group:32", torch.float32, torch.int8),
        ("uint8/asym", torch.float32, torch.int16),
        ("int4/group:32/scale:fp16", torch.float16, None),
        ("mxfp4", torch.float32, None),
    ],
)
def test_layers_hold_their_parameters_at_the_width_they_need(recipe, scale, zero, tiny_llama):
    q, report = quantize_model(tiny_llama, recipe)
    layer = q.model.layers[0].mlp.up_proj
    assert layer.scale.dtype == scale
    assert (layer.zero_point is None) == (zero is None)
    if zero is not None:
        assert layer.zero_point.dtype == zero
    w = tiny_llama.model.layers[0].mlp.up_proj.weight.detach()
    qt = quantize_tensor(w, recipe)
    assert torch.equal(layer.dequantized_weight(), qt.dequantize(torch.float32))
    row = next(r for r in report.layers if r.name == "model.layers.0.mlp.up_proj")
    # in memory: the packed codes, and the parameters at the dtype above
    assert layer.nbytes <= row.bytes_after * 2 + 64


def test_an_int32_bias_has_the_products_scale():
    from numfmt.quant import choose_qparams, fake_quantize

    torch.manual_seed(4)
    net = nn.Sequential(nn.Linear(32, 16))
    with torch.no_grad():
        net[0].bias.mul_(40.0)
    x = torch.randn(6, 32)
    q, _ = quantize_model(net, "w8a8-token", bias="int32")
    layer = q[0]
    qx = choose_qparams(x, "int8/token")
    s = qx.effective_scale.double() * layer.scale.double()  # (tokens, 1) x (out,)
    bias = torch.round(net[0].bias.detach().double() / s) * s
    expected = fake_quantize(x, qx) @ layer.dequantized_weight().T + bias.float()
    out = layer(x)
    assert torch.allclose(out, expected, rtol=0, atol=1e-5)
    floating, _ = quantize_model(net, "w8a8-token")
    assert not torch.equal(out, floating[0](x))  # the bias moved onto its grid
    assert torch.allclose(out, floating[0](x), atol=1e-3)
    with pytest.raises(NumfmtError, match="needs quantized activations"):
        quantize_model(net, "int8/channel", bias="int32")
    with pytest.raises(NumfmtError, match="per output channel"):
        quantize_model(net, "int8/group:16", activations="int8/token", bias="int32")


def test_static_activation_ranges_come_from_the_calibration_inputs(tiny_llama, ids):
    from numfmt.quant import QParams, choose_qparams

    seen = []
    layer_name = "model.layers.0.mlp.down_proj"
    hook = tiny_llama.get_submodule(layer_name).register_forward_pre_hook(
        lambda m, args: seen.append(args[0].detach().reshape(-1, args[0].shape[-1]))
    )
    with torch.no_grad():
        tiny_llama(ids)
    hook.remove()
    q, _ = quantize_model(tiny_llama, "w8a8-tensor", calibration=ids)
    layer = q.get_submodule(layer_name)
    assert isinstance(layer.activations, QParams) and str(layer.activation_scheme) == "int8"
    expected = choose_qparams(torch.cat(seen), "int8")
    assert torch.equal(layer.activations.scale.double(), expected.scale.double())
    with torch.no_grad():
        ref, out = tiny_llama(ids).logits, q(ids).logits
    assert torch.linalg.norm(out - ref) / torch.linalg.norm(ref) < 0.05
    with pytest.raises(NumfmtError, match="per token"):
        quantize_model(tiny_llama, "w8a8-token", calibration=ids)
    with pytest.raises(NumfmtError, match="quantizes no activations"):
        quantize_model(tiny_llama, "int8/channel", calibration=ids)
    with pytest.raises(NumfmtError, match="empty"):
        quantize_model(tiny_llama, "w8a8-tensor", calibration=[])
