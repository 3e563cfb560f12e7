"""How long GPTQ takes on a model of SmolLM2-135M's shape, on the CPU or a GPU.

    python bench/gptq_speed.py [--device cpu|cuda] [--tokens 16384] [--recipe int4/group:64]

A Llama with SmolLM2-135M's configuration (30 blocks of 576 wide, 1536 in the MLP, 9 heads,
3 key-value heads, a 49,152-token vocabulary) and random weights, so that no model file has
to travel; GPTQ's work depends on the shapes, not on the values. Calibration: random token
ids in windows of 512. Printed: the seconds to collect the Hessians (one forward pass of
the calibration tokens), to run GPTQ on every Linear layer, and round-to-nearest's seconds
on the same model (the reference measured in the same run).
"""

from __future__ import annotations

import argparse
import time

import torch

from numfmt.nn import quantize_model
from numfmt.nn.algorithms.gptq import GPTQ


def smollm2_shaped(device: str):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=49152,
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(config).to(device).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tokens", type=int, default=16384)
    parser.add_argument("--recipe", default="int4/group:64")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here")
    model = smollm2_shaped(args.device)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 49152, (args.tokens // 512, 512), generator=g).to(args.device)
    batches = list(ids.split(8))
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)

    def timed(**kwargs):
        sync()
        t0 = time.perf_counter()
        quantize_model(model, args.recipe, progress=False, **kwargs)
        sync()
        return time.perf_counter() - t0

    rtn = timed()
    gptq = timed(algorithm=GPTQ(act_order=True), calibration=batches)
    print(f"device {args.device}; torch {torch.__version__}; {args.recipe}; {args.tokens} tokens")
    print(f"round-to-nearest: {rtn:.1f} s")
    print(f"GPTQ (act-order), Hessians and columns: {gptq:.1f} s ({gptq / rtn:.1f}x RTN)")


if __name__ == "__main__":
    main()
