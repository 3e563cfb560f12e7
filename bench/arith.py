"""Arithmetic in a format (numfmt.arith) beside numpy's own rounding and pychop, in one run.

    python bench/arith.py [--size 10000000] [--device cpu|cuda] [--repeat 3]

On float32 operands (standard normal) it times, after one warm-up call each (excluded; it also
compiles numba's kernels), the best of ``--repeat`` runs of

1. ``add``, ``mul`` and ``fma`` rounded to nearest-even into fp16, bf16 and fp8_e4m3, against
   numpy's fp16 round trip ``x.astype(float16).astype(float32)`` of as many values (numpy has
   no bf16 or fp8 cast: the same fp16 round trip is their reference too). Goal: <= 2x;
2. ``add`` into fp16 in the other rounding modes, against the same round trip. Goal: <= 4x;
3. ``cumsum`` in fp16 (every addition rounded, left to right) against ``np.cumsum`` in float32
   (goal: <= 5x), and ``sum`` in fp16 in several orders against ``np.sum`` (informative);
4. ``numfmt.arith.round(x, "fp16")`` against pychop's ``Chop`` rounding to fp16 (numpy
   backend), with its Dask chunking off and with its default chunks. Goal: numfmt >= 20x
   faster.

Every ratio is numfmt's time over the reference's, both measured in this run (so > 1 means
numfmt is slower), except in the pychop table, which gives pychop's time over numfmt's.
``--device cuda`` runs the same calls on torch CUDA tensors, with torch's own round trip,
cumsum and sum as references. numfmt computes elementwise operations on the device (the fused
Triton kernel where triton is installed, else torch's operations one after another; the few
elements the fast path leaves go to the host); its sums run on the host, so their times
include the copies. Goal on CUDA: add, mul and fma within 3x of the round trip.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import time

import numpy as np
from _timing import best_of

import numfmt
import numfmt.arith as na
from numfmt.arith import elementwise
from numfmt.formats import _kernels

FORMATS = ("fp16", "bf16", "fp8_e4m3")
OTHER_MODES = ("nearest-away", "up", "down", "toward-zero", "odd", "stochastic")
ORDERS = ("sequential", "pairwise", "kahan", "numpy")
WARMUP_SIZE = 4096  # above numfmt's KERNEL_MIN_SIZE, so the warm-up reaches the compiled kernel

COLUMNS = [  # (title, width, format of the value)
    ("operation", 18, "{}"),
    ("format", 9, "{}"),
    ("rounding", 13, "{}"),
    ("numfmt ms", 10, "{:.1f}"),
    ("reference", 26, "{}"),
    ("ref ms", 8, "{:.1f}"),
    ("ratio", 8, "{:.2f}x"),
    ("goal", 7, "{}"),
    ("meets", 5, "{}"),
]


def line(values: list, columns=COLUMNS) -> str:
    cells = []
    for (_, width, fmt), v in zip(columns, values, strict=True):
        text = "-" if v is None else (v if isinstance(v, str) else fmt.format(v))
        cells.append(text.ljust(width) if isinstance(v, str) else text.rjust(width))
    return " ".join(cells)


def header(columns=COLUMNS) -> None:
    head = line([title for title, _, _ in columns], columns)
    print(head)
    print("-" * len(head))


class Numpy:
    """Operands as numpy arrays; numpy's own operations as the references."""

    name = "cpu"

    def put(self, x: np.ndarray):
        return x

    def timed(self, fn):
        return fn

    def round_trip(self, x):
        return lambda: x.astype(np.float16).astype(np.float32)

    round_trip_name = "numpy fp16 round trip"
    round_trip_code = "x.astype(float16).astype(float32)"
    cumsum_name = "np.cumsum (float32)"
    sum_name = "np.sum (float32)"

    def cumsum(self, x):
        return lambda: np.cumsum(x)

    def sum(self, x):
        return lambda: np.sum(x)

    def host(self, y) -> np.ndarray:
        return np.asarray(y)


class Torch:
    """Operands as torch tensors on a device; torch's own operations as the references."""

    round_trip_name = "torch fp16 round trip"
    round_trip_code = "x.half().float()"
    cumsum_name = "torch.cumsum (float32)"
    sum_name = "torch.sum (float32)"

    def __init__(self, device: str):
        import torch

        self.torch = torch
        self.name = device
        self.device = torch.device(device)

    def put(self, x: np.ndarray):
        return self.torch.from_numpy(x).to(self.device)

    def timed(self, fn):
        if self.device.type != "cuda":
            return fn

        def run():
            out = fn()
            self.torch.cuda.synchronize()
            return out

        return run

    def round_trip(self, x):
        return self.timed(lambda: x.half().float())

    def cumsum(self, x):
        return self.timed(lambda: self.torch.cumsum(x, 0))

    def sum(self, x):
        return self.timed(lambda: self.torch.sum(x))

    def host(self, y) -> np.ndarray:
        return y.detach().cpu().numpy() if hasattr(y, "detach") else np.asarray(y)


def versions(dev, pychop) -> str:
    parts = [f"numfmt {numfmt.__version__}", f"numpy {np.__version__}"]
    if _kernels.available():
        import numba

        parts.append(f"numba {numba.__version__}")
    else:
        parts.append("numba not installed (numfmt runs its Python loops: pip install numba)")
    parts.append(f"pychop {pychop.__version__}" if pychop else "pychop not installed")
    if isinstance(dev, Torch):
        parts.append(f"torch {dev.torch.__version__}")
    parts.append(platform.processor() or platform.machine())
    parts.append(f"{os.cpu_count()} cores")
    return ", ".join(parts)


def warm_up() -> float:
    """Run every numfmt.arith kernel this benchmark uses once on WARMUP_SIZE values (numba
    compiles them, or loads them from its cache); the seconds it took."""
    rng = np.random.default_rng(1)
    a, b, c = (rng.standard_normal(WARMUP_SIZE).astype(np.float32) for _ in range(3))
    t0 = time.perf_counter()
    for fmt in FORMATS:
        na.add(a, b, fmt), na.mul(a, b, fmt), na.fma(a, b, c, fmt)
    for mode in OTHER_MODES:
        na.add(a, b, "fp16", rounding=mode)
    na.round(a, "fp16")
    na.cumsum(a, "fp16")
    for order in ORDERS:
        na.sum(a, "fp16", order=order)
    return time.perf_counter() - t0


def ratio_row(op, fmt, mode, ours, ref_name, ref, goal, repeat, dev):
    t_ours = best_of(dev.timed(ours), repeat)
    t_ref = best_of(ref, repeat)
    ratio = t_ours / t_ref
    meets = None if goal is None else ("yes" if ratio <= goal else "no")
    goal_text = None if goal is None else f"<= {goal:g}x"
    return [op, fmt, mode, t_ours * 1e3, ref_name, t_ref * 1e3, ratio, goal_text, meets]


def elementwise_tables(dev, a, b, c, repeat: int) -> None:
    ref = dev.round_trip(a)
    goal = 3 if dev.name == "cuda" else 2
    print(
        f"1. add, mul, fma rounded to nearest-even. Reference: {dev.round_trip_name} "
        f"{dev.round_trip_code} of as many values,\n   for bf16 and fp8_e4m3 too (numpy has "
        "neither dtype: the fp16 round trip is every format's reference);\n   ratio = numfmt / "
        f"reference, goal <= {goal}x\n"
    )
    header()
    calls = {
        "add(a, b)": lambda fmt, **kw: lambda: na.add(a, b, fmt, **kw),
        "mul(a, b)": lambda fmt, **kw: lambda: na.mul(a, b, fmt, **kw),
        "fma(a, b, c)": lambda fmt, **kw: lambda: na.fma(a, b, c, fmt, **kw),
    }
    for fmt in FORMATS:
        for op, call in calls.items():
            row = ratio_row(
                op, fmt, "nearest-even", call(fmt), dev.round_trip_name, ref, goal, repeat, dev
            )
            print(line(row), flush=True)

    print(
        f"\n2. add into fp16 in the other rounding modes. Reference: {dev.round_trip_name} "
        "(nearest-even); ratio = numfmt / reference, goal <= 4x\n"
    )
    header()
    for mode in OTHER_MODES:
        row = ratio_row(
            "add(a, b)",
            "fp16",
            mode,
            calls["add(a, b)"]("fp16", rounding=mode),
            dev.round_trip_name,
            ref,
            4,
            repeat,
            dev,
        )
        print(line(row), flush=True)


def sum_table(dev, x, repeat: int) -> None:
    print(
        "\n3. Sums in fp16, every addition rounded (one thread). ratio = numfmt / reference; "
        "goal <= 5x for cumsum, the sums are informative\n"
    )
    header()
    row = ratio_row(
        "cumsum(x)",
        "fp16",
        "nearest-even",
        lambda: na.cumsum(x, "fp16"),
        dev.cumsum_name,
        dev.cumsum(x),
        5,
        repeat,
        dev,
    )
    print(line(row), flush=True)
    for order in ORDERS:
        row = ratio_row(
            f"sum(x, {order})",
            "fp16",
            "nearest-even",
            lambda order=order: na.sum(x, "fp16", order=order),
            dev.sum_name,
            dev.sum(x),
            None,
            repeat,
            dev,
        )
        print(line(row), flush=True)


PYCHOP_COLUMNS = [
    ("pychop call (numpy backend unless said)", 50, "{}"),
    ("pychop ms", 10, "{:.1f}"),
    ("numfmt ms", 10, "{:.1f}"),
    ("numfmt faster", 14, "{:.1f}x"),
    ("goal", 7, "{}"),
    ("meets", 5, "{}"),
    ("differs from fp16", 18, "{:,}"),
]


def pychop_table(pychop, dev, x, repeat: int) -> None:
    n = int(x.numel() if hasattr(x, "numel") else x.size)
    expected = dev.host(dev.round_trip(x)())
    ours = lambda: na.round(x, "fp16")  # noqa: E731
    ours_wrong = int(np.count_nonzero(dev.host(ours()) != expected))
    print(
        "\n4. Rounding the values to fp16 (nearest-even): pychop beside numfmt.arith.round(x, "
        '"fp16").\n   "numfmt faster" = pychop time / numfmt time, measured in this run; '
        '"differs from fp16" counts the\n   results unequal to the fp16 round trip '
        f"(numfmt's: {ours_wrong:,} of {n:,})\n"
    )
    t_ours = best_of(dev.timed(ours), repeat)
    if isinstance(dev, Torch):  # the torch backend has no chunking
        pychop.backend("torch")
        cases = [("Chop(5, 10, rmode=1): torch backend", pychop.Chop(5, 10, rmode=1))]
    else:
        pychop.backend("numpy")
        make = functools.partial(pychop.Chop, exp_bits=5, sig_bits=10)
        cases = [
            (f"Chop(5, 10, rmode=1, chunk_size={n}): no Dask", make(rmode=1, chunk_size=n)),
            ("Chop(5, 10, rmode=1): Dask, chunks of 800", make(rmode=1)),
        ]
    header(PYCHOP_COLUMNS)
    for name, chop in cases:
        wrong = int(np.count_nonzero(dev.host(chop(x)) != expected))
        t_theirs = best_of(dev.timed(lambda chop=chop: chop(x)), repeat)
        speed = t_theirs / t_ours
        row = [name, t_theirs * 1e3, t_ours * 1e3, speed, ">= 20x"]
        print(line([*row, "yes" if speed >= 20 else "no", wrong], PYCHOP_COLUMNS), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_000_000, help="values per operand")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    args = parser.parse_args()

    if args.device == "cuda":
        try:
            import torch
        except ImportError:
            print("--device cuda: torch is not installed; skipped (pip install '.[torch]')")
            return
        if not torch.cuda.is_available():
            print(f"--device cuda: torch {torch.__version__} sees no CUDA device; skipped")
            return
        dev = Torch("cuda")
        from numfmt.arith.elementwise import _fused

        how = "the fused Triton kernel" if _fused(dev.device) else "torch's operations"
        print(
            f"numfmt computes elementwise operations on the device with {how}; its sums on the host"
        )
    else:
        dev = Numpy()
    try:
        import pychop
    except ImportError:
        pychop = None

    print(versions(dev, pychop))
    if _kernels.available():
        import numba

        threads = len(elementwise._chunks(args.size)) - 1
        print(
            f"numba runs numfmt's elementwise kernels on {threads} thread(s) (numba's default "
            f"{numba.get_num_threads()}), its sums on one; numpy on one"
        )
    if args.size < elementwise.KERNEL_MIN_SIZE:
        print(f"--size below {elementwise.KERNEL_MIN_SIZE}: numfmt runs its Python loop")
    print(f"first calls of every kernel on {WARMUP_SIZE:,} values: {warm_up():.1f} s (excluded)")
    print(
        f"{args.size:,} float32 standard-normal values per operand, on {dev.name}; best of "
        f"{args.repeat} after one warm-up call each. Each ratio is numfmt's time / the "
        "reference's, both measured in this run\n"
    )
    rng = np.random.default_rng(0)
    a, b, c = (dev.put(rng.standard_normal(args.size).astype(np.float32)) for _ in range(3))
    elementwise_tables(dev, a, b, c, args.repeat)
    sum_table(dev, a, args.repeat)
    if pychop is None:
        print(
            "\n4. pychop is not installed: its comparison is skipped "
            "(pip install '.[bench]', or pip install pychop==0.6.2)"
        )
    else:
        pychop_table(pychop, dev, a, args.repeat)


if __name__ == "__main__":
    main()
