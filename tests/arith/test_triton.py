"""The fused Triton kernel that CUDA tensors take, run in Triton's interpreter on CPU tensors
(TRITON_INTERPRET=1, set before triton is imported: a subprocess of its own; its fma made
exact, as a GPU's is) against the host kernels: the same bits, signs, flags and refusals.
Skips where triton is not installed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("triton")

ROOT = Path(__file__).resolve().parents[2]

CHECK = textwrap.dedent(
    """
    import numpy as np, torch
    from fractions import Fraction
    from triton.runtime import interpreter

    # Triton's interpreter computes fma as a * b + c, two roundings (its numpy has no fused
    # operation); the kernel's exact products need the one rounding a GPU's fma makes, so
    # float64 fmas are done here exactly and rounded once (Fraction -> float rounds to
    # nearest even)
    plain_fma = interpreter.InterpreterBuilder.create_fma

    def exact_fma(self, x, y, z):
        out = plain_fma(self, x, y, z)
        if out.data.dtype != np.float64:
            return out
        a, b, c = np.broadcast_arrays(x.data, y.data, z.data)
        r = out.data.copy()
        finite = np.isfinite(a) & np.isfinite(b) & np.isfinite(c)
        for i in zip(*np.nonzero(finite)):
            exact = Fraction(a[i]) * Fraction(b[i]) + Fraction(c[i])
            if exact != 0:
                try:
                    r[i] = float(exact)
                except OverflowError:
                    r[i] = np.inf if exact > 0 else -np.inf
        out.data = r
        return out

    interpreter.InterpreterBuilder.create_fma = exact_fma
    import numfmt.arith as arith
    from numfmt.arith import elementwise
    from numfmt.errors import NumfmtError
    from numfmt.formats import get_format
    from tests.arith.test_elementwise import targeted

    MODES = ["nearest-even", "nearest-away", "nearest-zero", "up", "down", "toward-zero",
             "odd", "stochastic"]
    checked = bad = 0
    for name in ["fp16", "bf16", "fp8_e4m3", "e4m3fnuz", "fp4_e2m1", "e8m0", "e11m4"]:
        fmt = get_format(name)
        pool = np.concatenate([targeted(fmt, 60, seed=12), [0.0, -0.0, np.inf, -np.inf, np.nan]])
        rng = np.random.default_rng(13)
        a, b, c = (torch.from_numpy(rng.choice(pool, 400)) for _ in range(3))
        if not fmt.signed:
            a, b, c = a.abs(), b.abs(), c.abs()
        h = a.to(torch.bfloat16)  # an operand in a narrow dtype, read as it is
        cases = [("add", (a, b)), ("sub", (h, b)), ("mul", (a, 0.75)), ("div", (a, b)),
                 ("mul", (a[::2], b[1::2])),  # strided views
                 ("fma", (a, b, c)), ("sqrt", (a.abs(),)), ("round", (a.float(),))]
        for op, operands in cases:
            for mode in MODES:
                for options in ({}, {"daz": True, "ftz": True}, {"overflow": "saturate"}):
                    results = []
                    for path in (False, "triton"):
                        elementwise.TORCH_ON_CPU = path
                        flags = arith.Flags()
                        kw = dict(rounding=mode, flags=flags, seed=4, **options)
                        try:
                            got = getattr(arith, op)(*operands, fmt, **kw)
                            results.append((got, flags.to_dict()))
                        except NumfmtError as exc:
                            results.append((str(exc), None))
                    (want, want_flags), (got, got_flags) = results
                    checked += 1
                    if isinstance(want, str) or isinstance(got, str):
                        same = want == got
                    else:
                        equal = (got == want) & (got.signbit() == want.signbit())
                        same = (got.dtype == want.dtype and want_flags == got_flags
                                and bool((equal | (got.isnan() & want.isnan())).all()))
                    if not same:
                        bad += 1
                        print("differs:", name, op, mode, options)
    print(f"checked {checked}, differ {bad}")
    """
)


def test_fused_kernel_agrees_with_the_host_kernels():
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONWARNINGS="ignore")
    run = subprocess.run(
        [sys.executable, "-c", CHECK], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-3000:]
    last = run.stdout.strip().splitlines()[-1]
    assert last.endswith("differ 0") and not last.startswith("checked 0"), run.stdout[-3000:]


def test_fused_kernel_uses_the_numbers_of_the_cores():
    """The kernel spells operations and rounding modes as constants: they must be these."""
    from numfmt.arith import _core as ac
    from numfmt.formats import _core as fc

    assert tuple(range(6)) == (ac.ADD, ac.SUB, ac.MUL, ac.DIV, ac.FMA, ac.SQRT)
    assert tuple(range(8)) == (fc.RNE, fc.RNA, fc.RNZ, fc.RTZ, fc.RUP, fc.RDOWN, fc.RODD, fc.RSTOCH)
