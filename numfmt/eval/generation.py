"""Text from a (quantized) language model: a greedy continuation, and how not to compare
models (each one's perplexity on text it sampled itself)."""

from __future__ import annotations

import math
from typing import Any

import torch

from numfmt.errors import NumfmtError
from numfmt.eval.scoring import logits_of
from numfmt.nn.modules import decoded_weights


def generate(model: Any, tokenizer: Any, prompt: str, max_new_tokens: int = 30) -> str:
    """A greedy continuation of ``prompt`` (the prompt and what follows it)."""
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    with torch.no_grad(), decoded_weights(model):
        out = model.generate(
            ids,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.eos_token_id,
        )
    return tokenizer.decode(out[0], skip_special_tokens=True)


def own_text_perplexity(
    model: Any, tokenizer: Any, prompt: str, max_new_tokens: int = 64, seed: int = 0
) -> float:
    """How NOT to compare models: the perplexity of a model on a text it sampled itself from
    ``prompt`` (as the course's report measured each model). Each model scores text drawn
    from its own distribution, so a damaged model can score as well as the original, or
    better; compare on one shared text instead (:func:`score_models`). Seeded."""
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    with torch.no_grad(), decoded_weights(model):
        try:
            out = model.generate(
                ids,
                max_new_tokens=max_new_tokens,
                do_sample=True,
                top_k=50,
                pad_token_id=tokenizer.eos_token_id,
            )
        finally:
            torch.random.set_rng_state(generator_state)
        text = out[0]
        new = text[ids.shape[1] :]
        if new.numel() < 1:
            raise NumfmtError("the model generated nothing to score")
        logits = logits_of(model, text)
    logp = torch.log_softmax(logits[ids.shape[1] - 1 : -1], dim=-1)
    return math.exp(float(-logp.gather(1, new[:, None]).mean()))
