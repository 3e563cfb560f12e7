"""SmolLM2-135M with every linear layer's product through simulated matmuls, scored on one text.

    python bench/matmul_model.py [--tokens 256] [--models hopper-fp8,...] [--device cuda]
                                 [--text FILE]

On the first ``--tokens`` tokens of the text (WikiText-2's test text, ``../shared/data/`` in
this project's workspace, by default; numfmt's own essay where that is absent), in one window:
the float model, then the float model through each matmul model
(``numfmt.nn.simulate_matmuls``; FP8 operands scaled per token and per output channel).
Columns: perplexity, KL from float (nats per token), top-1 agreement with float, the seconds
the simulated model took to score the tokens, and that time over the float model's own in the
same run. Goals: ``hopper-fp8`` on 256 tokens within 5 minutes on 2 CPU cores; 1,024 tokens
on CUDA (``--device cuda --tokens 1024``).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from numfmt.eval.scoring import Reference, score, tokenize
from numfmt.lessons.language import sample_path
from numfmt.nn import load_model, simulate_matmuls

DEFAULT_TEXT = Path(__file__).resolve().parents[2] / "shared" / "data" / "wikitext-2-raw-test.txt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--models", default="hopper-fp8,hopper-fp8-promote128,fp8-fp32")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--text", default=None)
    args = parser.parse_args()
    path = Path(args.text) if args.text else DEFAULT_TEXT
    if not path.exists():
        path = sample_path()
    loaded = load_model("smollm2-135m")
    model = loaded.model.to(args.device)
    ids = tokenize(loaded.tokenizer, path.read_text(encoding="utf-8"))[: args.tokens]
    ids = ids.to(args.device)
    start = time.perf_counter()
    reference = Reference(model, ids, context=len(ids))
    base = reference.score("fp32")
    float_seconds = time.perf_counter() - start
    print(
        f"SmolLM2-135M, {len(ids)} tokens of {path.name} in one window, on {args.device} "
        f"({os.cpu_count()} cores), torch {torch.__version__}"
    )
    head = f"{'matmul model':<24}{'perplexity':>11}{'KL':>10}{'top-1':>8}{'seconds':>9}"
    print(head + f"{'x float':>9}")
    print(f"{'fp32 (torch)':<24}{base.perplexity:>11.3f}{'':>10}{'':>8}{float_seconds:>9.1f}")
    for name in args.models.split(","):
        sim = simulate_matmuls(model, name)
        t0 = time.perf_counter()
        s = score(sim, ids, context=len(ids), reference=reference, name=name)
        seconds = time.perf_counter() - t0
        goal = ""
        if name == "hopper-fp8":
            goal = "  goal: 300 s" if args.device == "cpu" else ""
        print(
            f"{name:<24}{s.perplexity:>11.3f}{s.kl:>10.4f}{s.top1:>8.1%}{seconds:>9.1f}"
            f"{seconds / float_seconds:>8.0f}x{goal}"
        )


if __name__ == "__main__":
    main()
