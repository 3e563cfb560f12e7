"""A memory budget must hold the largest module accelerate moves whole; a smaller one is
refused, naming it, rather than exceeded."""

import pytest

from numfmt.errors import NumfmtError
from numfmt.models.placement import check_budget, largest_unit
from numfmt.nn import load_model

pytest.importorskip("accelerate")


def _bytes(module):
    tensors = [*module.parameters(), *module.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def test_the_largest_unit_is_a_whole_decoder_layer(tiny_llama):
    name, size = largest_unit(tiny_llama)
    assert name == "model.layers.0"  # the first of two equal layers
    assert size == _bytes(tiny_llama.model.layers[0]) > _bytes(tiny_llama.model.embed_tokens)
    check_budget(tiny_llama, {"cpu": size}, "tiny")  # exactly enough
    with pytest.raises(
        NumfmtError, match=f"cannot hold model.layers.0 .*at least {size / 1e3:.3g}"
    ):
        check_budget(tiny_llama, {"cpu": size - 1}, "tiny")
    check_budget(tiny_llama, {0: "1KB", "cpu": "1MB"}, "tiny")  # one device that holds it will do


def test_a_folder_loaded_under_a_cap_smaller_than_a_layer_is_refused(folder, tmp_path):
    with pytest.raises(NumfmtError, match=f"{folder}: a max_memory of 50 kB cannot hold"):
        load_model(folder, tokenizer=False, max_memory="50KB", offload_folder=tmp_path / "o")
    assert not (tmp_path / "o").exists()  # refused before anything was placed


def test_a_placed_model_hands_freed_memory_back_after_loading_and_after_each_unit(
    tiny_llama, monkeypatch
):
    import copy

    import torch

    from numfmt.models import placement

    calls = []
    monkeypatch.setattr(placement, "_malloc_trim", lambda: calls.append)
    model = copy.deepcopy(tiny_llama)  # (hooks stay with the model)
    model.hf_device_map = {"": "cpu"}
    placement.release_after_use(model)
    assert calls == [0]  # what the load freed, at once
    with torch.no_grad():
        model(torch.tensor([[1, 2, 3]]))
    assert len(calls) == 1 + len(model.model.layers)  # and after each decoder layer


def test_with_a_gpu_in_the_map_layers_on_the_cpu_forget_their_layout_after_each_call(
    tiny_llama, monkeypatch
):
    # accelerate brings them to the GPU for each call: a kept layout would keep that copy
    import torch

    from numfmt.models import placement
    from numfmt.nn import quantize_model
    from numfmt.nn.modules import QuantLinear

    q, _ = quantize_model(tiny_llama, "int8/channel", progress=False)
    forgot = []
    monkeypatch.setattr(QuantLinear, "forget_layout", lambda self: forgot.append(self))
    q.hf_device_map = {"model.embed_tokens": 0, "model.layers.0": 0, "model.layers.1": "cpu",
                       "model.norm": 0, "lm_head": 0}  # fmt: skip
    placement.release_after_use(q)
    with torch.no_grad():
        q(torch.tensor([[1, 2, 3]]))
    on_cpu = [m for m in q.model.layers[1].modules() if isinstance(m, QuantLinear)]
    assert forgot and set(map(id, forgot)) == set(map(id, on_cpu))
    forgot.clear()
    q.hf_device_map = {"": "cpu"}  # everything in host memory: nothing is read back
    placement.release_after_use(q)
    with torch.no_grad():
        q(torch.tensor([[1, 2, 3]]))
    assert set(map(id, forgot)) == set(map(id, on_cpu))  # (the first hooks only)
