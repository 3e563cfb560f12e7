"""Encode and decode 10 million values: numfmt beside ml_dtypes and gfloat, in one run.

    python bench/formats.py [--n 10000000] [--repeat 3]

For each format and input dtype it prints values per second for

* numfmt ``encode`` / ``decode`` (compiled kernels when numba is installed, on every core;
  also on one thread, and the pure-numpy path, for comparison);
* ml_dtypes ``astype`` (one thread; up to version 0.6.0 it converted float64 through float32
  and so rounded twice, 0.7.0 rounds once: the run prints the version it measured);
* gfloat ``round_ndarray`` / ``decode_ndarray`` (pure numpy),

the ratios numfmt / ml_dtypes and numfmt / gfloat, and how many of the inputs the installed
ml_dtypes rounds differently from numfmt, counted in the same run (numfmt is checked against
exact rational arithmetic in the tests).
The goals: numfmt >= ml_dtypes for FP8/FP6/FP4, >= 0.5x ml_dtypes for bf16/fp16, >= 10x gfloat.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform

import numpy as np
from _timing import best_of

import numfmt
from numfmt.formats import _kernels

encode_module = importlib.import_module("numfmt.formats.encode")

FORMATS = {
    # numfmt name: gfloat FormatInfo name
    "bfloat16": "format_info_bfloat16",
    "float16": "format_info_binary16",
    "float8_e4m3fn": "format_info_ocp_e4m3",
    "float8_e5m2": "format_info_ocp_e5m2",
    "float6_e2m3fn": "format_info_ocp_e2m3",
    "float4_e2m1fn": "format_info_ocp_e2m1",
}


def with_backend(backend: str, fn):
    def run():
        before = encode_module.BACKEND
        encode_module.BACKEND = backend
        try:
            return fn()
        finally:
            encode_module.BACKEND = before

    return run


def one_thread(fn):
    def run():
        import numba

        before = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            return fn()
        finally:
            numba.set_num_threads(before)

    return run


COLUMNS = [  # (title, width, format of the value)
    ("format", 14, "{}"),
    ("input", 8, "{}"),
    ("op", 7, "{}"),
    ("numfmt", 8, "{:.0f}"),
    ("1 thread", 9, "{:.0f}"),
    ("numpy", 7, "{:.0f}"),
    ("ml_dtypes", 10, "{:.0f}"),
    ("gfloat", 7, "{:.1f}"),
    ("vs ml_dtypes", 13, "{:.2f}x"),
    ("vs gfloat", 10, "{:.0f}x"),
    ("ml_dtypes wrong", 16, "{:,}"),
]


def line(values: list) -> str:
    cells = []
    for (_, width, fmt), v in zip(COLUMNS, values, strict=True):
        text = "-" if v is None else (v if isinstance(v, str) else fmt.format(v))
        cells.append(text.ljust(width) if isinstance(v, str) else text.rjust(width))
    return " ".join(cells)


def measure(name: str, dtype: str, x: np.ndarray, gfloat_info, repeat: int, threads: bool):
    """Rows (encode, and decode for float64 input) of rates in millions of values per second."""
    fmt = numfmt.get_format(name)
    dt = fmt.ml_dtype
    codes = numfmt.encode(x, fmt)
    theirs = x.astype(dt).view(fmt.code_dtype)
    wrong = int(np.count_nonzero(codes != theirs))
    gf = None
    if gfloat_info is not None:
        import gfloat

        gf = (
            lambda: gfloat.round_ndarray(gfloat_info, x),
            lambda: gfloat.decode_ndarray(gfloat_info, codes),
        )
    ops = [
        ("encode", lambda: numfmt.encode(x, fmt), lambda: x.astype(dt), gf and gf[0], wrong),
        (
            "decode",
            lambda: numfmt.decode(codes, fmt),
            lambda: theirs.view(dt).astype(np.float64),
            gf and gf[1],
            None,
        ),
    ]
    rows = []
    for op, ours, ml, other, errors in ops:
        if op == "decode" and dtype == "float32":
            continue  # the same codes as for float64 input: decoding once is enough
        rate = lambda seconds: x.size / seconds / 1e6  # noqa: E731
        t_ours = best_of(ours, repeat)
        t_one = best_of(one_thread(ours), repeat) if threads else None
        t_np = best_of(with_backend("numpy", ours), repeat) if op == "encode" else None
        t_ml = best_of(ml, repeat)
        t_gf = best_of(other, 1) if other else None
        rows.append(
            [
                name,
                dtype,
                op,
                rate(t_ours),
                t_one and rate(t_one),
                t_np and rate(t_np),
                rate(t_ml),
                t_gf and rate(t_gf),
                t_ml / t_ours,
                t_gf and t_gf / t_ours,
                errors,
            ]
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000, help="values per measurement")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    args = parser.parse_args()

    try:
        import gfloat.formats as gfloat_formats
    except ImportError:
        gfloat_formats = None
    numba_ok = _kernels.available()
    x64 = np.random.default_rng(0).standard_normal(args.n)
    inputs = {"float64": x64, "float32": x64.astype(np.float32)}

    machine = platform.processor() or platform.machine()
    import ml_dtypes

    peers = f"ml_dtypes {ml_dtypes.__version__}"
    if gfloat_formats is not None:
        from importlib.metadata import version

        peers += f", gfloat {version('gfloat')}"
    print(
        f"numfmt {numfmt.__version__}, numpy {np.__version__}, {peers}, {machine}, "
        f"{os.cpu_count()} cores"
    )
    if numba_ok:
        import numba

        print(
            f"numba {numba.__version__}: numfmt runs on {numba.get_num_threads()} threads; "
            "ml_dtypes and gfloat on one"
        )
    else:
        print("numba is not installed: numfmt runs its numpy path (pip install numba)")
    if gfloat_formats is None:
        print("gfloat is not installed: its columns are empty (pip install gfloat)")
    print(f"{args.n:,} standard-normal values, best of {args.repeat}; millions of values/s\n")
    head = line([title for title, _, _ in COLUMNS])
    print(head)
    print("-" * len(head))
    for name, gname in FORMATS.items():
        info = getattr(gfloat_formats, gname) if gfloat_formats else None
        for dtype, x in inputs.items():
            for row in measure(name, dtype, x, info, args.repeat, numba_ok):
                print(line(row), flush=True)


if __name__ == "__main__":
    main()
