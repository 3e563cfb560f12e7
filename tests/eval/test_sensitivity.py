"""Layer sensitivity: each layer's cost alone, the model put back, and a mixed recipe that
stays within its bit budget."""

import json

import pytest
import torch

from numfmt.errors import NumfmtError
from numfmt.eval.memory import scheme_bits
from numfmt.eval.scoring import reference_logprobs, score
from numfmt.eval.sensitivity import allocate, mixed_precision, sensitivity
from numfmt.nn import quantize_model


@pytest.fixture(scope="module")
def ids():
    return torch.randint(0, 96, (96,), generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def ranked(tiny_llama, ids):
    return sensitivity(tiny_llama, "int2/channel", ids, context=32, progress=False)


def test_each_layer_is_measured_alone_and_the_model_is_put_back(tiny_llama, ids, ranked):
    before = {k: v.clone() for k, v in tiny_llama.state_dict().items()}
    again = sensitivity(tiny_llama, "int2/channel", ids, context=32, progress=False)
    after = tiny_llama.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert type(tiny_llama.model.layers[0].self_attn.q_proj).__name__ == "Linear"
    assert [layer.name for layer in again.layers] == [layer.name for layer in ranked.layers]
    kls = [layer.kl for layer in ranked.layers]
    assert len(kls) == 14 and kls == sorted(kls, reverse=True) and kls[-1] >= 0
    # the worst layer's cost, measured independently: a model with only that layer quantized
    worst = ranked.layers[0]
    alone, _ = quantize_model(tiny_llama, {worst.name: worst.scheme, "*": None}, progress=False)
    ref = reference_logprobs(tiny_llama, ids, context=32)
    assert score(alone, ids, context=32, reference=ref).kl == pytest.approx(worst.kl, rel=1e-9)
    assert worst.bits_per_weight == pytest.approx(scheme_bits("int2/channel", worst.shape))


def test_allocation_stays_within_the_budget_and_moves_the_costly_layers(ranked):
    total = sum(layer.parameters for layer in ranked.layers)
    floor = sum(layer.parameters * layer.bits_per_weight for layer in ranked.layers) / total
    assert allocate(ranked, floor) == {layer.name: layer.scheme for layer in ranked.layers}
    with pytest.raises(NumfmtError, match="below the recipe's own"):
        allocate(ranked, floor - 0.5)
    everything = allocate(ranked, 64.0)
    assert set(everything.values()) == {"int8/channel"}
    budget = floor + 1.5
    recipe = allocate(ranked, budget)
    bits = (
        sum(
            scheme_bits(recipe[layer.name], layer.shape) * layer.parameters
            for layer in ranked.layers
        )
        / total
    )
    assert bits <= budget + 1e-9
    promoted = [layer for layer in ranked.layers if recipe[layer.name] == "int8/channel"]
    assert promoted and len(promoted) < len(ranked.layers)
    # no layer left behind would still fit
    for layer in ranked.layers:
        if recipe[layer.name] != "int8/channel":
            extra = (
                scheme_bits("int8/channel", layer.shape) - layer.bits_per_weight
            ) * layer.parameters
            assert bits + extra / total > budget


def test_the_mixed_recipe_is_measured_beside_the_uniform_one(tiny_llama, ids, ranked):
    result = mixed_precision(tiny_llama, ranked, ids, 64.0, context=32)
    a = result.allocation
    assert len(a.promoted) == 14 and a.kl < a.uniform_kl
    assert a.bits_per_weight > a.uniform_bits_per_weight
    d = json.loads(result.to_json())
    assert d["allocation"]["high"] == "int8/channel" and len(d["layers"]) == 14
    from numfmt.cli.base import pipe_text

    text = pipe_text(result)
    first_row = next(line for line in text.splitlines() if line.strip().startswith("1 "))
    assert ranked.layers[0].name in first_row
    assert "within 64 bits per weight: 14 layers at int8/channel" in text


def test_a_recipe_that_quantizes_nothing_is_refused(tiny_llama, ids):
    with pytest.raises(NumfmtError, match="quantizes no layer"):
        sensitivity(tiny_llama, {"nothing.here": "int4", "*": None}, ids, context=32)
