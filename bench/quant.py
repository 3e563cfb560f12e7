"""Quantize a 4096 x 4096 float32 matrix on numpy and on torch, beside torch's own ops, in one run.

    python bench/quant.py [--n 4096] [--repeat 5] [--device cpu|cuda]

Times are given in *copies*: the time of ``np.copyto`` of the matrix (the memory-bandwidth
floor) measured in the same run; on CUDA, in copies of the tensor on the GPU (``Tensor.copy_``).
Each row prints numfmt's time, the goal the issue set, and where there is one, the reference
measured in the same run and the ratio (reference time / numfmt time: above 1, numfmt is
faster).

Rows:

* numpy (the default install, numba's kernels): quantize_tensor int8 per channel (scales
  included) against torch's ``quantize_per_channel``; int4 in groups of 128 with packing;
  fake_quantize (quantize and dequantize in one pass) for int8 per channel and int4 g128
  against torch's ``fake_quantize_per_channel_affine`` with its scales computed by torch; the
  MSE search over 100 clip ratios per channel;
* numpy without numba (the exact numpy paths) for the same;
* torch on --device (CPU by default): the same operations on a tensor, beside torch's native
  ops and beside the numpy path. A CPU tensor of float32 or float64 takes numba's kernels on
  its own memory (``Tensor.numpy()`` shares it); on the CPU a second table forces numfmt's
  engine in torch operations (float64 quotients), what torch's half types run. A CUDA tensor
  takes the fused Triton kernels (``numfmt.quant._gpu``); there, the MSE search's speed-up
  over the numpy path on the same machine's CPU. On either, the cost of one call on a 64 x
  64 tensor, with and without gradients, beside torch's computing its scales too and beside
  torch's op alone (what a QAT step pays per layer).
"""

from __future__ import annotations

import argparse
import importlib
import warnings

import numpy as np
from _timing import best_of

from numfmt.formats import _kernels as format_kernels
from numfmt.quant import choose_qparams, fake_quantize, quantize_tensor

quant_kernels = importlib.import_module("numfmt.quant._kernels")
encode_module = importlib.import_module("numfmt.formats.encode")


def numpy_only(fn):
    """fn with numba's kernels switched off (the exact numpy paths)."""

    def run():
        before = quant_kernels.MIN_SIZE, quant_kernels.MIN_GROUPS, encode_module.BACKEND
        quant_kernels.MIN_SIZE, quant_kernels.MIN_GROUPS = 1 << 62, 1 << 62
        encode_module.BACKEND = "numpy"
        try:
            return fn()
        finally:
            quant_kernels.MIN_SIZE, quant_kernels.MIN_GROUPS, encode_module.BACKEND = before

    return run


class Table:
    def __init__(self, unit: float, unit_name: str) -> None:
        self.unit, self.unit_name, self.rows = unit, unit_name, []

    def add(self, label, ours, goal="", ref_label="", ref=None):
        self.rows.append((label, ours, goal, ref_label, ref))

    def print(self, title: str) -> None:
        print(f"\n{title}")
        head = (
            f"{'numfmt':40} {'ms':>8} {self.unit_name:>7} {'goal':>8}   "
            f"{'reference':40} {'ms':>8} {self.unit_name:>7} {'ratio':>7}"
        )
        print(head)
        print("-" * len(head))
        for label, ours, goal, ref_label, ref in self.rows:
            cells = f"{label:40} {ours * 1e3:8.2f} {ours / self.unit:7.2f} {goal:>8}"
            if ref is not None:
                cells += (
                    f"   {ref_label:40} {ref * 1e3:8.2f} {ref / self.unit:7.2f} {ref / ours:6.2f}x"
                )
            print(cells)


def torch_scales(torch, t, qmax):
    lo, hi = torch.amin(t, dim=1), torch.amax(t, dim=1)
    return torch.maximum(-lo, hi).clamp_min(1e-12) / qmax


def torch_fake_per_channel(torch, t, qmax):
    """torch's own fake quantization, its scales computed by torch too (outside the graph,
    as torch.ao's observers do)."""
    scale = torch_scales(torch, t.detach(), qmax).float()
    zero = torch.zeros(t.shape[0], dtype=torch.int32, device=t.device)
    return torch.fake_quantize_per_channel_affine(t, scale, zero, 0, -qmax, qmax)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4096)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--device", default="cpu", help="where the torch rows run: cpu or cuda")
    args = parser.parse_args()
    n, repeat = args.n, args.repeat
    x = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    out = np.empty_like(x)
    copy = best_of(lambda: np.copyto(out, x), repeat)
    try:
        import torch

        torch.set_num_threads(2)
        warnings.filterwarnings("ignore", message=".*quantized tensor creation")
        t = torch.from_numpy(x)
    except ImportError:
        torch = None
    print(
        f"{n} x {n} float32 ({x.nbytes / 2**20:.0f} MiB); one copy = {copy * 1e3:.2f} ms; "
        f"numba: {'yes' if format_kernels.available() else 'no'}; best of {repeat}"
    )

    # -- numpy, the default install -----------------------------------------------------------
    numpy_rows = Table(copy, "copies")
    if torch is not None:
        ref_q = best_of(
            lambda: torch.quantize_per_channel(
                t,
                torch_scales(torch, t, 127).double(),
                torch.zeros(n, dtype=torch.int64),
                0,
                torch.qint8,
            ),
            repeat,
        )
        ref_fq8 = best_of(lambda: torch_fake_per_channel(torch, t, 127), repeat)
        t128 = t.reshape(-1, 128)
        ref_fq4 = best_of(lambda: torch_fake_per_channel(torch, t128, 7), repeat)
    else:
        ref_q = ref_fq8 = ref_fq4 = None
    times = {}
    times["q8"] = best_of(lambda: quantize_tensor(x, "int8/channel"), repeat)
    numpy_rows.add("int8 per channel", times["q8"], "<= 3", "torch quantize_per_channel", ref_q)
    times["q4"] = best_of(lambda: quantize_tensor(x, "int4/group:128/scale:fp16").pack(), repeat)
    numpy_rows.add("int4 group:128 + packing", times["q4"], "<= 4")
    times["fq8"] = best_of(lambda: fake_quantize(x, "int8/channel"), repeat)
    numpy_rows.add(
        "fake_quantize int8 per channel",
        times["fq8"],
        "<= 3",
        "torch fake_quantize_per_channel_affine",
        ref_fq8,
    )
    times["fq4"] = best_of(lambda: fake_quantize(x, "int4/group:128"), repeat)
    numpy_rows.add(
        "fake_quantize int4 group:128",
        times["fq4"],
        "<= 3",
        "torch fake_quantize (rows of 128)",
        ref_fq4,
    )
    times["mse"] = best_of(lambda: choose_qparams(x, "int8/channel/mse:100"), 1)
    numpy_rows.add("MSE search, 100 ratios per channel", times["mse"], "<= 40")
    numpy_rows.print("numpy, default install (numba kernels)")

    # -- numpy without numba ------------------------------------------------------------------
    slow = Table(copy, "copies")
    slow.add("int8 per channel", best_of(numpy_only(lambda: quantize_tensor(x, "int8/channel")), 2))
    slow.add(
        "int4 group:128 + packing",
        best_of(numpy_only(lambda: quantize_tensor(x, "int4/group:128/scale:fp16").pack()), 2),
    )
    slow.add(
        "fake_quantize int8 per channel",
        best_of(numpy_only(lambda: fake_quantize(x, "int8/channel")), 2),
    )
    slow.add(
        "MSE search, 100 ratios per channel",
        best_of(numpy_only(lambda: choose_qparams(x, "int8/channel/mse:100")), 1),
    )
    slow.print("numpy without numba (exact numpy paths)")

    if torch is None:
        return
    device = torch.device(args.device)
    td = t.to(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def timed(fn, r=repeat):
        def run():
            fn()
            sync()

        return best_of(run, r)

    unit = copy
    unit_name = "copies"
    if device.type == "cuda":
        buffer = torch.empty_like(td)
        unit = timed(lambda: buffer.copy_(td))
        unit_name = "copies"
    native8 = timed(lambda: torch_fake_per_channel(torch, td, 127))
    native4 = timed(lambda: torch_fake_per_channel(torch, td.reshape(-1, 128), 7))
    native_q = (
        timed(
            lambda: torch.quantize_per_channel(
                td,
                torch_scales(torch, td, 127).double(),
                torch.zeros(n, dtype=torch.int64, device=device),
                0,
                torch.qint8,
            )
        )
        if device.type == "cpu"
        else None
    )

    def torch_table(wrap, title):
        rows = Table(unit, unit_name)
        ours = timed(wrap(lambda: fake_quantize(td, "int8/channel")))
        rows.add(
            "fake_quantize int8 per channel",
            ours,
            "",
            "torch fake_quantize_per_channel_affine",
            native8,
        )
        ours4 = timed(wrap(lambda: fake_quantize(td, "int4/group:128")))
        rows.add(
            "fake_quantize int4 group:128", ours4, "", "torch fake_quantize (rows of 128)", native4
        )
        ours_q = timed(wrap(lambda: quantize_tensor(td, "int8/channel")))
        rows.add(
            "quantize_tensor int8 per channel", ours_q, "", "torch quantize_per_channel", native_q
        )
        mse = timed(wrap(lambda: choose_qparams(td, "int8/channel/mse:100")), 1)
        rows.add("MSE search, 100 ratios per channel", mse, "")
        rows.print(title)
        print(
            f"torch {device} / numpy path: fake_quantize int8 per channel "
            f"{ours / times['fq8']:.2f}x, int4 g128 {ours4 / times['fq4']:.2f}x, "
            f"quantize int8 per channel {ours_q / times['q8']:.2f}x (goal on the CPU: <= 2x)"
        )
        return ours, mse

    small = torch.randn(64, 64, device=device)
    calls = 500

    def many(fn):
        return lambda: [fn() for _ in range(calls)]

    ours_small = timed(many(lambda: fake_quantize(small, "int8/channel"))) / calls
    native_small = timed(many(lambda: torch_fake_per_channel(torch, small, 127))) / calls
    given = torch_scales(torch, small, 127).float()
    zero = torch.zeros(64, dtype=torch.int32, device=device)
    bare = (
        timed(
            many(lambda: torch.fake_quantize_per_channel_affine(small, given, zero, 0, -127, 127))
        )
        / calls
    )
    print(
        f"per call on 64 x 64 ({device}): fake_quantize int8/channel {1e6 * ours_small:.1f} us, "
        f"torch (scales and fake_quantize_per_channel_affine) {1e6 * native_small:.1f} us: "
        f"{ours_small / native_small:.2f}x (goal <= 3x); torch's op alone, its scales given: "
        f"{1e6 * bare:.1f} us ({ours_small / bare:.2f}x)"
    )
    # what a QAT step pays per layer: the forward with a graph, and the backward
    leaf = small.clone().requires_grad_()
    grad = torch.ones_like(small)
    ours_grad = timed(many(lambda: fake_quantize(leaf, "int8/channel").backward(grad))) / calls
    native_grad = (
        timed(many(lambda: torch_fake_per_channel(torch, leaf, 127).backward(grad))) / calls
    )
    print(
        f"per call on 64 x 64 with gradients ({device}): {1e6 * ours_grad:.1f} us, "
        f"torch {1e6 * native_grad:.1f} us: {ours_grad / native_grad:.2f}x (goal <= 3x)\n"
    )
    if device.type == "cpu":
        torch_table(lambda fn: fn, "torch on cpu (numba's kernels on the tensor's memory)")
        print()
        torch_table(numpy_only, "torch on cpu, kernels off (numfmt's engine in torch operations)")
        return
    ours, mse = torch_table(
        lambda fn: fn, f"torch on {device} (numfmt's fused Triton kernels, where they apply)"
    )
    if device.type == "cuda":
        print(
            f"CUDA fake_quantize int8/channel / torch native: {ours / native8:.2f}x (goal <= 1.0x)"
        )
        print(
            f"MSE search, CUDA vs the numpy path on this machine's CPU: "
            f"{times['mse'] / mse:.1f}x faster (goal >= 20x)"
        )


if __name__ == "__main__":
    main()
