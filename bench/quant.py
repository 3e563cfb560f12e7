"""Quantize a 4096 x 4096 float32 matrix: numfmt beside torch and a plain copy, in one run.

    python bench/quant.py [--n 4096] [--repeat 5]

Times are given in *copies*: the time of ``np.copyto`` of the matrix (the memory-bandwidth
floor) measured in the same run. Rows:

* int8 per tensor / per channel, scales included: numfmt ``quantize_tensor`` against torch's
  ``quantize_per_tensor`` / ``quantize_per_channel`` with the scales computed by torch;
* int4 in groups of 128, packed two to a byte;
* MSE calibration over 100 clip ratios per channel, against torch's ``HistogramObserver``
  (which calibrates one range for the whole tensor) and numfmt's own numpy path.

Goals: per-channel int8 faster than torch and within 6 copies; the 100-ratio MSE search within
100 copies (a plain numpy loop takes about 450).
"""

from __future__ import annotations

import argparse
import importlib
import warnings

import numpy as np
from _timing import best_of

from numfmt.formats import _kernels as format_kernels
from numfmt.quant import choose_qparams, quantize_tensor

quant_kernels = importlib.import_module("numfmt.quant._kernels")


def numpy_only(fn):
    def run():
        before = quant_kernels.MIN_SIZE
        quant_kernels.MIN_SIZE = 1 << 62
        try:
            return fn()
        finally:
            quant_kernels.MIN_SIZE = before

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4096)
    parser.add_argument("--repeat", type=int, default=5)
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

    rows: list[tuple[str, float | None, str, float | None]] = []

    def add(label, ours, ref_label="", ref=None):
        rows.append((label, ours, ref_label, ref))

    add("np.copyto (the floor)", copy)
    add(
        "int8 per tensor",
        best_of(lambda: quantize_tensor(x, "int8"), repeat),
        "torch quantize_per_tensor",
        best_of(
            lambda: torch.quantize_per_tensor(t, float(t.abs().max()) / 127, 0, torch.qint8), repeat
        )
        if torch
        else None,
    )
    add(
        "int8 per channel",
        best_of(lambda: quantize_tensor(x, "int8/channel"), repeat),
        "torch quantize_per_channel",
        best_of(
            lambda: torch.quantize_per_channel(
                t, t.abs().amax(dim=1) / 127, torch.zeros(n, dtype=torch.int64), 0, torch.qint8
            ),
            repeat,
        )
        if torch
        else None,
    )
    add(
        "int8 per channel, numpy path",
        best_of(numpy_only(lambda: quantize_tensor(x, "int8/channel")), max(1, repeat // 2)),
    )
    add(
        "int4 group:128 + packing",
        best_of(lambda: quantize_tensor(x, "int4/group:128/scale:fp16").pack(), repeat),
    )
    mse_ref = None
    if torch:
        from torch.ao.quantization import HistogramObserver

        def histogram_observer():
            obs = HistogramObserver()
            obs(t)
            return obs.calculate_qparams()

        mse_ref = best_of(histogram_observer, 1)
    add(
        "MSE search, 100 ratios per channel",
        best_of(lambda: choose_qparams(x, "int8/channel/mse:100"), 1),
        "torch HistogramObserver (per tensor)",
        mse_ref,
    )
    add(
        "MSE search, numpy path",
        best_of(numpy_only(lambda: choose_qparams(x, "int8/channel/mse:100")), 1),
    )

    print(
        f"{n} x {n} float32 ({x.nbytes / 2**20:.0f} MiB); one copy = {copy * 1e3:.1f} ms; "
        f"numba: {'yes' if format_kernels.available() else 'no'}; best of {repeat}"
    )
    cols = f"{'ms':>8} {'copies':>7}"
    head = f"{'numfmt':38} {cols}   {'reference':38} {cols} {'ratio':>6}"
    print(head)
    print("-" * len(head))
    for label, ours, ref_label, ref in rows:
        ref_cells = (
            f"{ref_label:38} {ref * 1e3:8.1f} {ref / copy:7.1f} {ref / ours:5.1f}x" if ref else ""
        )
        print(f"{label:38} {ours * 1e3:8.1f} {ours / copy:7.1f}   {ref_cells}")


if __name__ == "__main__":
    main()
