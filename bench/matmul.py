"""Matrix products through accumulator models (numfmt.arith.matmul) beside torch.matmul in
float32 and MMA-Sim's reference code, in one run.

    python bench/matmul.py [--m 512 --k 4096 --n 512] [--repeat 2] [--models hopper-fp8,...]
                           [--device cuda]

Times, after one warm-up call each (excluded; it also compiles numba's kernels), the best of
``--repeat`` runs of ``matmul(a, b, model=M)`` on standard normal operands, beside
``torch.matmul`` of the same float32 operands on the CPU (its threads as torch sets them).
With ``--device cuda`` the operands are CUDA tensors (numfmt's whole-tensor torch kernels,
the same bits) and torch.matmul runs there too. Goal: ``hopper-fp8`` on 512 x 4096 x 512
within 50x of torch.matmul on the CPU, within 20x on CUDA. Where MMA-Sim's
reference code is at ../shared/ref/MMA-Sim, it also times one of its instructions
(wgmma m64n8k32 e4m3) and gives its cost per product beside numfmt's.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from _timing import best_of

import numfmt
from numfmt.arith.matmul import matmul

MMA_SIM = Path(__file__).resolve().parents[2] / "shared" / "ref" / "MMA-Sim"


def _mma_sim_per_product() -> float | None:
    if not (MMA_SIM / "mmasim").is_dir():
        return None
    import torch

    sys.path.insert(0, str(MMA_SIM))
    from mmasim.simulator import nv_ptx

    inst = nv_ptx.wgmma("Hopper", "m64n8k32.f32.e4m3.e4m3")
    a = torch.randn(64, 32).to(torch.float8_e4m3fn)
    b = torch.randn(32, 8).to(torch.float8_e4m3fn)
    c = torch.zeros(64, 8)
    t0 = time.perf_counter()
    inst(a, b, c)
    return (time.perf_counter() - t0) / (64 * 8 * 32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--m", type=int, default=512)
    parser.add_argument("--k", type=int, default=4096)
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument(
        "--models", default="hopper-fp8,hopper-fp8-promote128,blackwell-fp8,ampere-fp16"
    )
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    args = parser.parse_args()
    import torch

    rng = np.random.default_rng(0)
    a = rng.standard_normal((args.m, args.k)).astype(np.float32)
    b = rng.standard_normal((args.k, args.n)).astype(np.float32)
    ta, tb = torch.from_numpy(a).to(args.device), torch.from_numpy(b).to(args.device)
    if args.device == "cuda":
        a, b = ta, tb  # numfmt's operands on the device too

    def synced(f):
        def run():
            out = f()
            if args.device == "cuda":
                torch.cuda.synchronize()
            return out

        return run

    ref = best_of(synced(lambda: torch.matmul(ta, tb)), max(args.repeat, 5))
    products = args.m * args.n * args.k
    print(
        f"numfmt {numfmt.__version__}, torch {torch.__version__}, {platform.machine()}, "
        f"{os.cpu_count()} cores; ({args.m} x {args.k}) @ ({args.k} x {args.n}) = "
        f"{products:,} products"
    )
    print(f"torch.matmul float32 on {args.device}: {ref * 1e3:.2f} ms\n")
    print(f"{'model':<24}{'numfmt':>10}{'ns/product':>12}{'x torch':>10}{'goal':>8}")
    for name in args.models.split(","):
        t = best_of(synced(lambda name=name: matmul(a, b, model=name)), args.repeat)
        goal = ("<= 20x" if args.device == "cuda" else "<= 50x") if name == "hopper-fp8" else ""
        print(f"{name:<24}{t:>9.2f}s{t / products * 1e9:>12.2f}{t / ref:>9.0f}x{goal:>8}")
    sim = _mma_sim_per_product()
    if sim is not None:
        print(
            f"\nMMA-Sim's reference code (wgmma m64n8k32 e4m3): {sim * 1e6:.1f} us a product; "
            f"at that rate this product would take {sim * products / 3600:.1f} hours"
        )


if __name__ == "__main__":
    main()
