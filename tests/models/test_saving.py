"""A quantized model in one safetensors file and back: the same outputs, tied weights, bad files."""

import pytest
import torch

from numfmt.errors import NumfmtError
from numfmt.models.saving import load_quantized, save_model
from numfmt.nn import QuantEmbedding, QuantLinear, quantize_model


@pytest.mark.parametrize("recipe", ["int4/asym/group:32", "w8a8-token", "nf4", "q4_1"])
@pytest.mark.parametrize("which", ["tiny_llama", "tiny_gpt2"])
def test_a_saved_model_loads_back_into_the_same_outputs(which, recipe, request, tmp_path, ids):
    model = request.getfixturevalue(which)
    q, report = quantize_model(model, recipe, kinds=("linear", "conv1d", "embedding"))
    path = save_model(q, tmp_path / "q.safetensors", report=report)
    back = load_quantized(path)
    with torch.no_grad():
        assert torch.equal(q(ids).logits, back(ids).logits)
    kinds = {type(m).__name__ for m in back.modules()}
    assert {"QuantLinear", "QuantEmbedding"} <= kinds
    for name, module in q.named_modules():
        if isinstance(module, QuantLinear | QuantEmbedding):
            other = back.get_submodule(name)
            assert torch.equal(other.codes, module.codes) and torch.equal(other.scale, module.scale)
            assert str(other.scheme) == str(module.scheme)
            if isinstance(module, QuantLinear):
                assert other.source == module.source and other.activations == module.activations
    # packed codes make the file smaller than the float model
    assert path.stat().st_size < sum(p.numel() * 4 for p in model.parameters())


def test_saving_refuses_what_it_must(tmp_path, tiny_llama):
    with pytest.raises(NumfmtError, match="no quantized layer"):
        save_model(tiny_llama, tmp_path / "a.safetensors")
    q, _ = quantize_model(tiny_llama, "int8/channel")
    path = save_model(q, tmp_path / "a.safetensors")
    before = path.read_bytes()
    with pytest.raises(NumfmtError, match="exists"):
        save_model(q, path)
    assert path.read_bytes() == before
    with pytest.raises(NumfmtError, match=r"\.safetensors"):
        save_model(q, tmp_path / "a.bin")
    other = tmp_path / "other.safetensors"
    from numfmt.quant import quantize_tensor, save

    save(other, {"w": quantize_tensor(torch.randn(8, 8), "int8")})
    with pytest.raises(NumfmtError, match="not a quantized model"):
        load_quantized(other)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 40)
    with pytest.raises(NumfmtError):
        load_quantized(junk)


def test_a_model_without_a_config_loads_into_a_given_skeleton(tmp_path):
    torch.manual_seed(2)
    net = torch.nn.Sequential(torch.nn.Linear(32, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    q, _ = quantize_model(net, "int4/group:16")
    path = save_model(q, tmp_path / "net.safetensors")
    with pytest.raises(NumfmtError, match="pass the model to fill"):
        load_quantized(path)
    skeleton = torch.nn.Sequential(torch.nn.Linear(32, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    back = load_quantized(path, model=skeleton)
    x = torch.randn(5, 32)
    assert torch.equal(back(x), q(x))
    wrong = torch.nn.Sequential(torch.nn.Linear(32, 16))
    with pytest.raises(NumfmtError, match="which the model has not"):
        load_quantized(path, model=wrong)


def test_static_activation_ranges_and_int32_biases_are_saved(tmp_path, tiny_gpt2, ids):
    q, report = quantize_model(tiny_gpt2, "w8a8-tensor", calibration=ids, bias="int32")
    path = save_model(q, tmp_path / "static.safetensors", report=report)
    back = load_quantized(path)
    with torch.no_grad():
        assert torch.equal(q(ids).logits, back(ids).logits)
    layer = back.get_submodule("transformer.h.0.attn.c_attn")
    assert layer.bias_mode == "int32" and "(static)" in layer.extra_repr()
