"""One quantized linear layer's product for a token, against the float layer's, per call.

    python bench/packed_layer.py [--device cpu|cuda] [--calls 2000]

SmolLM2-135M's three shapes (576 -> 576, 576 -> 1536, 1536 -> 576), one row of input (a
generated token). For each scheme: the packed product (``numfmt.nn.packed``: numba on the
CPU, one Triton kernel on CUDA) and the decode-then-matmul path it replaces
(``packed.decode_only()``, no weight kept), beside ``torch.nn.functional.linear`` with the
float weight, measured in the same run. Per call in microseconds (best of 3 runs of
``--calls`` calls, the device synchronised at the end of each run), and the ratio to float
(below 1: faster). Called in a loop, the float weight stays in the CPU's caches, which it does
not in a model (``bench/generation.py`` measures that); on a GPU a call this small is bound by
launching (Python and the driver), not by reading the weight.
"""

from __future__ import annotations

import argparse

import torch
from _timing import best_of

from numfmt.nn import packed
from numfmt.nn.modules import QuantLinear
from numfmt.quant import quantize_tensor

SHAPES = [(576, 576), (1536, 576), (576, 1536)]


def per_call(fn, calls: int, device: str) -> float:
    """Microseconds per call: the best of 3 runs of ``calls`` calls (after a warm-up run),
    the device synchronised at the end of each run."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def run() -> None:
        for _ in range(calls):
            fn()
        sync()

    sync()
    return best_of(run, 3) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--schemes", default="int8/channel,int4/group:128,q4_1")
    args = parser.parse_args()
    dev = args.device
    print(f"one token, {dev}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'layer':<28} {'float us':>9} {'packed us':>10} {'x float':>8} {'decoded us':>11}")
    for n_out, n_in in SHAPES:
        w = torch.randn(n_out, n_in, generator=torch.Generator().manual_seed(0)) * 0.05
        x = torch.randn(1, n_in).to(dev)
        wf = w.to(dev)
        ref = per_call(lambda wf=wf, x=x: torch.nn.functional.linear(x, wf), args.calls, dev)
        for scheme in args.schemes.split(","):
            layer = QuantLinear(quantize_tensor(w, scheme), None).to(dev)
            with torch.no_grad():
                ours = per_call(lambda layer=layer, x=x: layer(x), args.calls, dev)
                with packed.decode_only():
                    slow = per_call(lambda layer=layer, x=x: layer(x), args.calls // 4, dev)
            name = f"{n_in}->{n_out} {scheme}"
            print(f"{name:<28} {ref:9.1f} {ours:10.1f} {ours / ref:8.2f} {slow:11.1f}")


if __name__ == "__main__":
    main()
