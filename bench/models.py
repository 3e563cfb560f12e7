"""SmolLM2-135M quantized by numfmt's recipes and by the peer libraries, scored on one text.

    python bench/models.py [--text FILE] [--tokens 8192] [--context 512] [--only numfmt|peers]

On the first ``--tokens`` tokens of the text (WikiText-2's test text, ``../shared/data/`` in
this project's workspace, by default), in windows of ``--context``: float32, then each
recipe. Columns: perplexity, the KL divergence from float (nats per token), top-1 agreement
with float, storage bits per quantized weight, bytes the model holds in memory, seconds to
quantize, tokens per second while scoring. The float model's log-probabilities are computed
once and each model is scored against them, one at a time.

A recipe ``SCHEME+ALGORITHM`` (``+gptq``, ``+gptq-imatrix``, ``+imatrix``, ``+output-mse``,
``+model-kl`` (its factors per kind of layer), ``+model-kl-model`` (one for the model),
``+model-kl-minmax`` (clip ratios per kind of layer from min-max, by the model's KL alone))
is calibrated on ``--calibration-tokens`` tokens of the same text starting at
``--calibration-from`` (after the scored ones). ``--mixed BITS`` ranks the layers by
sensitivity under ``--mixed-base`` on 512 calibration tokens, moves the most sensitive to
int8/channel within BITS per weight, and scores that recipe.

Caveat: SmolLM2's float weights are themselves dequantized Q4_1 (blocks of 32 with a float
minimum), so 4-bit grids of 32 with a float minimum (q4_1) give them back exactly, and
asymmetric g32 grids look better here than they would on a model trained in float; compare
at g64 and g128 too.
"""

from __future__ import annotations

import argparse
import gc
import time
from pathlib import Path

import torch

from numfmt.eval.scoring import reference_logprobs, score, tokenize
from numfmt.nn import load_model, quantize_model

DEFAULT_TEXT = Path(__file__).resolve().parents[2] / "shared" / "data" / "wikitext-2-raw-test.txt"
RECIPES = [
    "int8-absmax",
    "int8-zeropoint",
    "int8/channel",
    "int4/channel",
    "int4/group:128",
    "int4/group:64",
    "int4/group:32",
    "int4/asym/group:64",
    "int4/asym/group:32",
    "q4_1",
    "mxfp4",
    "nvfp4",
    "nf4",
    "w8a8-token",
    "w8a8-token-asym",
    "w8a8-tensor",
    "int4/full/group:32",
    # beyond round-to-nearest: calibrated on tokens of the same text after the scored ones
    "int4/group:64+imatrix",
    "int4/group:64+output-mse",
    "int4/group:64+model-kl",
    "int4/group:64+model-kl-minmax",
    "int4/group:64+gptq",
    "int4/asym/group:64/scale:fp16+gptq",
    "int4/asym/group:96/scale:fp16+gptq",
    "int4/asym/group:96/scale:fp16+gptq-imatrix",
    "int4/asym/group:128/scale:fp16+gptq-imatrix",
]


def algorithm(name: str):
    """A recipe's ``+suffix``: round-to-nearest, activation-weighted or output-aware ranges,
    or GPTQ (act-order, damping 0.01; ``gptq-imatrix``: its scales by weighted ranges)."""
    from numfmt.nn.algorithms.gptq import GPTQ
    from numfmt.nn.algorithms.model_kl import ModelKL

    choices = {"": "rtn", "imatrix": "imatrix", "output-mse": "output-mse"}
    choices["model-kl"] = ModelKL(per="kind")
    choices["model-kl-model"] = ModelKL(per="model")
    clip = (0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0)
    choices["model-kl-minmax"] = ModelKL(factors=clip, per="kind", start="minmax")
    choices["gptq"] = GPTQ(act_order=True)
    choices["gptq-imatrix"] = GPTQ(act_order=True, weighted_ranges=True)
    if name not in choices:
        raise SystemExit(f"unknown algorithm +{name}; use one of {', '.join(choices)}")
    return choices[name]


def held_bytes(model) -> int:
    """Bytes of every parameter and buffer the model holds, each storage once: packed codes
    as stored, a tensor subclass (quanto's, torchao's) by the tensors inside it, a peer's
    float copies too. (hqq keeps its scales in a dict beside its buffers: not counted.)"""
    seen: set[int] = set()

    def size(t) -> int:
        if t is None:
            return 0
        if hasattr(t, "__tensor_flatten__") and type(t) is not torch.Tensor:
            names, _ = t.__tensor_flatten__()
            return sum(size(getattr(t, n)) for n in names)
        storage = t.untyped_storage()
        if storage.data_ptr() in seen:
            return 0
        seen.add(storage.data_ptr())
        return storage.nbytes()

    return sum(size(t) for t in [*model.parameters(), *model.buffers()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", type=Path, default=DEFAULT_TEXT)
    parser.add_argument("--tokens", type=int, default=8192)
    parser.add_argument("--context", type=int, default=512)
    parser.add_argument("--only", choices=["numfmt", "peers"], default=None)
    parser.add_argument("--recipes", default=None, help="numfmt recipes, comma-separated")
    parser.add_argument("--minilm", action="store_true", help="also MiniLM's sentence embeddings")
    parser.add_argument("--calibration-tokens", type=int, default=16384)
    parser.add_argument("--calibration-from", type=int, default=40000)
    parser.add_argument("--mixed", type=float, default=None, help="a mixed recipe within BITS")
    parser.add_argument("--mixed-base", default="int4/asym/group:128/scale:fp16")
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)

    start = time.perf_counter()
    lm = load_model("smollm2-135m")
    print(f"SmolLM2-135M loaded in {lm.seconds:.1f} s (tokenizer {lm.tokenizer_seconds:.1f} s)")
    every = tokenize(lm.tokenizer, args.text.read_text(encoding="utf-8"))
    ids = every[: args.tokens]
    window = args.context
    calib_ids = every[args.calibration_from : args.calibration_from + args.calibration_tokens]
    calibration = list(calib_ids[: len(calib_ids) // window * window].reshape(-1, window).split(8))
    ref = reference_logprobs(lm.model, ids, context=args.context)
    base = score(lm.model, ids, context=args.context, name="float32")
    print(f"{args.text.name}: {base.tokens:,} tokens scored, context {args.context}\n")
    header = (
        f"{'recipe':44} {'ppl':>9} {'KL':>8} {'top-1':>7} {'bits/w':>7} {'MB held':>8} "
        f"{'quant s':>8} {'tok/s':>7}"
    )
    print(header)
    print("-" * len(header))
    float_bytes = held_bytes(lm.model)
    print(
        f"{'float32':44} {base.perplexity:9.3f} {'-':>8} {'-':>7} {32:7.3g} "
        f"{float_bytes / 1e6:8.1f} {'-':>8} {base.tokens_per_second:7.0f}",
        flush=True,
    )

    def row(label, quantize):
        gc.collect()
        t0 = time.perf_counter()
        try:
            model, bits = quantize()
        except Exception as exc:  # a peer that does not run here: say so
            print(f"{label:44} n/a: {type(exc).__name__}: {str(exc)[:60]}", flush=True)
            return
        seconds = time.perf_counter() - t0
        try:
            s = score(model, ids, context=args.context, reference=ref, name=label)
        except Exception as exc:  # quantized, but its forward pass fails here
            print(f"{label:44} n/a: scoring: {type(exc).__name__}: {str(exc)[:50]}", flush=True)
            return
        bits_text = f"{bits:7.3g}" if bits is not None else f"{'?':>7}"
        print(
            f"{label:44} {s.perplexity:9.3f} {s.kl:8.4f} {s.top1:7.1%} {bits_text} "
            f"{held_bytes(model) / 1e6:8.1f} {seconds:8.1f} {s.tokens_per_second:7.0f}",
            flush=True,
        )

    if args.only != "peers":
        recipes = args.recipes.split(",") if args.recipes else RECIPES
        for recipe in recipes:

            def ours(recipe=recipe):
                scheme, _, name = recipe.partition("+")
                how = algorithm(name)
                extra = {} if how == "rtn" else {"algorithm": how, "calibration": calibration}
                q, report = quantize_model(lm.model, scheme, progress=False, **extra)
                if report.search is not None:
                    found = report.search
                    kept = ", ".join(f"{s.group.split('.')[-1]} {s.factor:g}" for s in found.steps)
                    print(
                        f"  search on {found.tokens} calibration tokens: KL {found.kl_start:.4f}"
                        f" -> {found.kl_end:.4f} ({kept}; {found.seconds:.0f} s)",
                        flush=True,
                    )
                return q, report.bits_per_weight

            row(f"numfmt {recipe}", ours)
    if args.mixed is not None:
        from numfmt.eval.sensitivity import allocate, sensitivity

        def mixed():
            ranked = sensitivity(lm.model, args.mixed_base, calib_ids[:512], progress=False)
            recipe = allocate(ranked, args.mixed, high="int8/channel")
            q, report = quantize_model(lm.model, {**recipe, "*": None}, progress=False)
            return q, report.bits_per_weight

        row(f"numfmt mixed {args.mixed_base} + int8/ch @{args.mixed:g}", mixed)
    if args.only != "numfmt":
        import copy

        from _peers import PEERS

        for label, quantize in PEERS.items():

            def theirs(quantize=quantize):
                return quantize(copy.deepcopy(lm.model)), None

            row(label, theirs)
    if args.minilm:
        minilm(args.text)
    print(f"\n{time.perf_counter() - start:.0f} s in all")


def minilm(text: Path, count: int = 256) -> None:
    """all-MiniLM-L6 (a model trained in float) on ``count`` lines of the text: mean and
    worst cosine of each quantized model's sentence embeddings with the float model's, and
    the share of sentences whose nearest neighbour stays the same."""
    import copy

    from numfmt.eval.embeddings import compare_embeddings, embed

    enc = load_model("minilm-l6")
    lines = [ln.strip() for ln in text.read_text(encoding="utf-8").splitlines()]
    usable = [ln for ln in lines if len(ln) > 40 and not ln.startswith("=")]
    sentences = usable[:count]
    # calibration: other lines of the text, one sentence a batch
    calibration = [enc.tokenizer(ln, return_tensors="pt")["input_ids"] for ln in usable[-256:]]
    ref = embed(enc.model, enc.tokenizer, sentences)
    print(f"\nall-MiniLM-L6 on {len(sentences)} lines of {text.name}")
    print(f"{'recipe':44} {'mean cos':>9} {'worst cos':>9} {'same NN':>8}")

    def ours(recipe):
        scheme, _, name = recipe.partition("+")
        how = algorithm(name)
        extra = {} if how == "rtn" else {"algorithm": how, "calibration": calibration}
        return quantize_model(enc.model, scheme, progress=False, **extra)[0]

    rows = [(f"numfmt {r}", lambda r=r: ours(r)) for r in MINILM]
    from _peers import PEERS

    for label in ("quanto int8", "quanto int4", "torchao int8", "hqq 4-bit g64"):
        rows.append((label, lambda q=PEERS[label]: q(copy.deepcopy(enc.model))))
    for label, make in rows:
        try:
            score = compare_embeddings(ref, embed(make(), enc.tokenizer, sentences), label)
        except Exception as exc:  # a peer that does not run here
            print(f"{label:44} n/a: {type(exc).__name__}: {str(exc)[:50]}")
            continue
        print(
            f"{label:44} {score.mean_cosine:9.5f} {score.worst_cosine:9.5f} "
            f"{score.same_neighbour:8.1%}",
            flush=True,
        )


MINILM = [
    "int8",
    "int8/channel",
    "int4/channel",
    "int4/group:128",
    "int4/group:32",
    "nf4",
    "q4_1",
    "int4/group:64",
    "int4/group:64+imatrix",
    "int4/group:64+output-mse",
    "int4/group:64+gptq",
    "int4/asym/group:128/scale:fp16",
    "int4/asym/group:128/scale:fp16+gptq",
]


if __name__ == "__main__":
    main()
