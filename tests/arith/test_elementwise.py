"""numfmt.arith's operations against MPFR (gmpy2) and exact Fractions on fp16, bf16 and fp32,
with targeted operands: ties of both signs, exact results, the overflow threshold and the
binade above it, the underflow threshold, powers of two and large exponent gaps; then flags,
FTZ/DAZ, stochastic rounding, the numpy and torch paths and bad input."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

import numfmt.arith as arith
from numfmt.arith import elementwise
from numfmt.errors import FormatNameError, NotRepresentableError, NumfmtError
from numfmt.formats import _kernels, get_format
from tests.arith.test_exhaustive import sqrt_key
from tests.reference import reference_value

gmpy2 = pytest.importorskip("gmpy2")

MPFR_MODES = {
    "nearest-even": gmpy2.RoundToNearest,
    "toward-zero": gmpy2.RoundToZero,
    "up": gmpy2.RoundUp,
    "down": gmpy2.RoundDown,
}
FORMATS = ["fp16", "bf16", "fp32"]


def mpfr_context(fmt, mode):
    """A gmpy2 context that is fmt: precision, exponent range (MPFR's significands lie in
    [1/2, 1), one binade above IEEE's), subnormals."""
    p = fmt.mantissa_bits + 1
    return gmpy2.context(
        precision=p,
        emax=fmt.emax + 1,
        emin=fmt.emin - p + 2,
        subnormalize=True,
        round=MPFR_MODES[mode],
    )


def targeted(fmt, n: int, seed: int) -> np.ndarray:
    """Operands where rounding is hard: powers of two across the range, the largest value and
    its neighbourhood, the smallest normal and subnormal, values with bits just past the
    format's precision (ties and near-ties), random values of every scale."""
    rng = np.random.default_rng(seed)
    p = fmt.mantissa_bits + 1
    top, tiny = float(fmt.max_value), float(fmt.smallest)
    ulp1 = 2.0 ** (1 - p)
    above = 2.0 ** min(fmt.emax + 1, 1023)  # float64's largest binade, for formats that reach it
    pool = [0.0, 1.0, top, top * (1 + ulp1 / 4), above, float(fmt.min_normal)]
    pool += [tiny, tiny / 2, tiny * 1.5, top - 2.0 ** (fmt.emax - p)]
    pool += [2.0**k for k in range(fmt.emin - p - 2, min(fmt.emax + 2, 1024), 3)]
    pool += [1 + k * ulp1 / 2 for k in range(-3, 4)]  # ties and neighbours around 1
    pool += [2.0**-60, 2.0**-100, 1 + 2.0**-60, 3.0, 0.1, 1 / 3]
    scales = 2.0 ** rng.integers(fmt.emin - p, min(fmt.emax + 1, 1023), n)
    bits = rng.integers(0, 2**52, n) * 2.0**-52
    pool += list((1 + bits) * scales)
    # values of the format with half an ulp (a tie) or a little more or less added
    base = (1 + np.floor(bits * 2 ** (p - 1)) / 2 ** (p - 1)) * scales
    offsets = rng.choice([0.5, 0.5 + 2**-30, 0.5 - 2**-30, 0.25, 1.0], n)
    pool += list(base + offsets * scales * ulp1)
    v = np.array(pool, dtype=np.float64)
    v = v[np.abs(v) < 2.0**1000]
    return np.concatenate([v, -v])


def mpfr_result(op, operands, ctx) -> float:
    x = [gmpy2.mpfr(float(v), 53) for v in operands]  # exact, outside the target context
    return float(getattr(ctx, op)(*x))


def same(got, want) -> bool:
    if math.isnan(want):
        return math.isnan(got)
    return got == want and math.copysign(1, got) == math.copysign(1, want)


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("mode", list(MPFR_MODES))
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "fma", "sqrt"])
def test_against_mpfr(monkeypatch, name, mode, op):
    """The compiled kernel against MPFR (the Python loop agrees with the kernel: below)."""
    _on_the_kernel(monkeypatch)
    fmt = get_format(name)
    pool = targeted(fmt, 150, seed=1)
    rng = np.random.default_rng(2)
    n = 1500
    a, b, c = (rng.choice(pool, n) for _ in range(3))
    if op == "sqrt":
        a = np.abs(a)
    if op == "fma":  # near-cancellation: c close to -a*b
        c[:300] = -(a[:300] * b[:300]) * (1 + rng.choice([0, 2.0**-40, -(2.0**-20)], 300))
    operands = {"sqrt": (a,), "fma": (a, b, c)}.get(op, (a, b))
    got = getattr(arith, op)(*operands, fmt, rounding=mode)
    ctx = mpfr_context(fmt, mode)
    for i in range(n):
        each = [x[i] for x in operands]
        want = mpfr_result(op, each, ctx)
        if op in ("add", "sub", "fma") and want == 0:
            continue  # MPFR's exact zeros take the sign rule of its own; checked below
        assert same(float(got[i]), want), f"{op}{tuple(each)} in {name}, {mode}"


def _on_the_kernel(monkeypatch) -> None:
    """Send arrays of every length to the compiled kernel, where numba is installed."""
    if _kernels.available():
        monkeypatch.setattr(elementwise, "BACKEND", "numba")


def exact(op, operands) -> Fraction:
    x = [Fraction(float(v)) for v in operands]
    return {
        "add": lambda: x[0] + x[1],
        "sub": lambda: x[0] - x[1],
        "mul": lambda: x[0] * x[1],
        "div": lambda: x[0] / x[1],
        "fma": lambda: x[0] * x[1] + x[2],
    }[op]()


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("mode", ["nearest-away", "nearest-zero", "odd"])
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "fma", "sqrt"])
def test_modes_mpfr_lacks_against_fractions(monkeypatch, name, mode, op):
    _on_the_kernel(monkeypatch)
    fmt = get_format(name)
    pool = targeted(fmt, 100, seed=3)
    rng = np.random.default_rng(4)
    n = 400
    a, b, c = (rng.choice(pool, n) for _ in range(3))
    if op == "sqrt":
        a = np.abs(a)
    operands = {"sqrt": (a,), "fma": (a, b, c)}.get(op, (a, b))
    got = getattr(arith, op)(*operands, fmt, rounding=mode)
    for i in range(n):
        each = [x[i] for x in operands]
        if op == "sqrt":
            key = sqrt_key(float(each[0]), fmt)
        else:
            if op == "div" and each[1] == 0:
                continue
            key = exact(op, each)
        if key == 0:
            continue
        ref = reference_value(key, fmt, mode, "ieee")
        want = {"-0": -0.0, "inf": math.inf, "-inf": -math.inf}.get(ref, ref)
        assert same(float(got[i]), float(want)), f"{op}{tuple(each)} in {name}, {mode}"


def test_directed_rounding_is_not_binary64_then_round():
    # the example: bf16 round-down of 1 + (-2^-60); binary64 first would give 1.0
    assert float(arith.add(1.0, -(2.0**-60), "bf16", rounding="down")) == 0.99609375
    assert float(arith.add(1.0, 2.0**-60, "bf16", rounding="up")) == 1.0078125
    # fma: one rounding, where a*b in float32 and then + c rounds twice
    a, b = np.float32(1 + 2**-12), np.float32(1 - 2**-12)
    assert float(arith.fma(a, b, np.float32(-1), "fp16")) == -(2.0**-24)


@pytest.mark.parametrize(
    ("op", "operands", "mode", "want"),
    [
        ("add", (1.0, -1.0), "nearest-even", 0.0),
        ("add", (1.0, -1.0), "down", -0.0),
        ("add", (-0.0, -0.0), "nearest-even", -0.0),
        ("add", (-0.0, 0.0), "nearest-even", 0.0),
        ("add", (-0.0, 0.0), "down", -0.0),
        ("sub", (0.0, 0.0), "down", -0.0),
        ("mul", (-0.0, 5.0), "up", -0.0),
        ("div", (0.0, -3.0), "nearest-even", -0.0),
        ("sqrt", (-0.0,), "nearest-even", -0.0),
        ("fma", (2.0, 3.0, -6.0), "nearest-even", 0.0),
        ("fma", (2.0, 3.0, -6.0), "down", -0.0),
        ("fma", (-0.0, 3.0, -0.0), "nearest-even", -0.0),
        ("fma", (0.0, 3.0, -0.0), "nearest-even", 0.0),
        ("add", (math.inf, 1.0), "nearest-even", math.inf),
        ("add", (math.inf, -math.inf), "nearest-even", math.nan),
        ("mul", (math.inf, 0.0), "nearest-even", math.nan),
        ("div", (1.0, 0.0), "nearest-even", math.inf),
        ("div", (-1.0, 0.0), "nearest-even", -math.inf),
        ("div", (0.0, 0.0), "nearest-even", math.nan),
        ("div", (1.0, math.inf), "nearest-even", 0.0),
        ("sqrt", (-1.0,), "nearest-even", math.nan),
        ("fma", (math.inf, 0.0, 1.0), "nearest-even", math.nan),
        ("fma", (math.inf, 1.0, -math.inf), "nearest-even", math.nan),
        ("add", (math.nan, 1.0), "nearest-even", math.nan),
    ],
    ids=lambda v: str(v),
)
def test_ieee_special_cases(op, operands, mode, want):
    got = float(getattr(arith, op)(*operands, "fp16", rounding=mode))
    assert same(got, want)


def test_flags_count_what_happened():
    flags = arith.Flags()
    a = np.array([1.0, 1.0, 65504.0, 2.0**-14, 2.0**-24, 0.0, 1.0, np.inf])
    b = np.array([1.0, 2.0**-12, 65504.0, 0.25, 0.75, 0.0, 0.0, -np.inf])
    arith.add(a[:5], b[:5], "fp16", flags=flags)
    # 1 + 2^-12 inexact; 65504 + 65504 overflows (and is inexact); 2^-24 + 0.75 inexact;
    # 2^-14 + 0.25 inexact; nothing tiny
    assert flags.to_dict() == {
        "inexact": 4,
        "underflow": 0,
        "overflow": 1,
        "invalid": 0,
        "divide_by_zero": 0,
    }
    flags.clear()
    arith.mul(np.array([2.0**-14, 2.0**-14, 3.0]), np.array([0.25, 0.3, 1.0]), "fp16", flags=flags)
    # 2^-16 is an exact subnormal: tiny but exact, no underflow; 2^-14 * 0.3 is tiny and inexact
    assert (flags.inexact, flags.underflow) == (1, 1)
    flags.clear()
    arith.div(a[5:], b[5:], "fp16", flags=flags)
    assert (flags.invalid, flags.divide_by_zero) == (2, 1)
    assert flags.raised() == ["invalid", "divide_by_zero"]


def test_context_accumulates_flags_and_settings():
    ctx = arith.Context("bf16", rounding="toward-zero")
    assert float(ctx.add(1.0, 2.0**-9)) == 1.0
    assert float(ctx.sqrt(2.0)) == 1.4140625
    assert ctx.flags.inexact == 2
    assert ctx.replace(rounding="up").flags.inexact == 0
    assert float(ctx.replace(rounding="up").add(1.0, 2.0**-9)) == 1.0078125


def test_ftz_and_daz():
    sub = 2.0**-15  # a subnormal of fp16
    assert float(arith.mul(2.0**-14, 0.5, "fp16")) == sub
    flags = arith.Flags()
    assert same(float(arith.mul(-(2.0**-14), 0.5, "fp16", ftz=True, flags=flags)), -0.0)
    assert flags.underflow == 1
    assert float(arith.add(sub, sub, "fp16")) == 2.0**-14
    assert float(arith.add(sub, sub, "fp16", daz=True)) == 0.0
    assert float(arith.add(sub, 1.0, "fp16", daz=True, rounding="up")) == 1.0
    # a result that rounds up to the smallest normal is not flushed
    assert float(arith.mul(2.0**-14 * (1 - 2.0**-12), 1.0, "fp16", ftz=True)) == 2.0**-14


def test_stochastic_probabilities():
    # 1 + 2^-12 lies a quarter of the way from 1 to the next fp16 value, 1 + 2^-10
    n = 40_000
    x = np.full(n, 1.0)
    up = arith.add(x, 2.0**-12, "fp16", rounding="stochastic", seed=5) > 1
    assert abs(up.mean() - 0.25) < 5 * math.sqrt(0.25 * 0.75 / n)
    # 0.3 of the way, with 2 random bits: the distance is cut to 0.25
    y = np.full(n, 2.0**-10 * 0.3)
    up2 = arith.add(x, y, "fp16", rounding="stochastic", random_bits=2) > 1
    assert abs(up2.mean() - 0.25) < 5 * math.sqrt(0.25 * 0.75 / n)
    # with one bit, 0.3 is cut to 0: never up; 0.5 is kept: up half the time
    assert not (arith.add(x, y, "fp16", rounding="stochastic", random_bits=1) > 1).any()
    half = arith.add(x, 2.0**-11, "fp16", rounding="stochastic", random_bits=1) > 1
    assert abs(half.mean() - 0.5) < 5 * math.sqrt(0.25 / n)
    # exact results never move
    assert (arith.add(x, 2.0**-10, "fp16", rounding="stochastic") == 1 + 2.0**-10).all()


def test_stochastic_repeats_by_seed():
    x = np.full(1000, 1.0)
    one = arith.add(x, 2.0**-12, "fp16", rounding="stochastic", seed=1)
    again = arith.add(x, 2.0**-12, "fp16", rounding="stochastic", seed=1)
    other = arith.add(x, 2.0**-12, "fp16", rounding="stochastic", seed=2)
    assert np.array_equal(one, again) and not np.array_equal(one, other)
    ctx = arith.Context("fp16", rounding="stochastic", seed=1)
    first, second = ctx.add(x, 2.0**-12), ctx.add(x, 2.0**-12)
    assert np.array_equal(first, one) and not np.array_equal(first, second)


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "fma", "sqrt"])
def test_python_loop_and_kernel_agree(monkeypatch, name, op):
    """The compiled kernel (with its fast path for operands that need no scaling) and the
    Python loop (the path MPFR checks above, on fewer than 2048 elements) give the same bits
    and flags on the targeted operands, with zeros, infinities and NaN among them."""
    pytest.importorskip("numba")
    fmt = get_format(name)
    pool = np.concatenate([targeted(fmt, 100, seed=6), [0.0, -0.0, np.inf, -np.inf, np.nan]])
    rng = np.random.default_rng(8)
    a, b, c = (rng.choice(pool, 1000) for _ in range(3))
    operands = {"sqrt": (a,), "fma": (a, b, c)}.get(op, (a, b))
    for mode in ("nearest-even", "down", "odd", "nearest-zero", "stochastic"):
        results = {}
        for backend in ("numpy", "numba"):
            monkeypatch.setattr(elementwise, "BACKEND", backend)
            flags = arith.Flags()
            values = getattr(arith, op)(*operands, fmt, rounding=mode, flags=flags)
            results[backend] = (values, flags.to_dict())
        assert np.array_equal(results["numpy"][0], results["numba"][0], equal_nan=True), mode
        assert np.array_equal(np.signbit(results["numpy"][0]), np.signbit(results["numba"][0]))
        assert results["numpy"][1] == results["numba"][1], mode


@pytest.mark.parametrize("name", ["e8m0", "fp8_e5m2", "e4m3fnuz", "fp6_e2m3", "fp4_e2m1", "e11m4"])
@pytest.mark.parametrize("options", [{}, {"ftz": True}, {"daz": True}, {"overflow": "saturate"}])
def test_vectorised_pass_agrees_with_the_python_loop(monkeypatch, name, options):
    """The kernel's vectorised pass (on the float64's own bits) and its scalar fallback give
    what the Python loop gives, in formats whose corners differ: no subnormals and no sign
    (e8m0), no negative zero (fnuz), no infinity or NaN (fp6, fp4), float64's exponent range
    with a 5-bit significand (e11m4); every deterministic mode, with the options that touch
    the edges of the range."""
    pytest.importorskip("numba")
    fmt = get_format(name)
    pool = np.concatenate([targeted(fmt, 200, seed=9), [0.0, -0.0, np.inf, -np.inf, np.nan]])
    rng = np.random.default_rng(10)
    a, b, c = (rng.choice(pool, 500) for _ in range(3))
    if not fmt.signed:
        a, b, c = np.abs(a), np.abs(b), np.abs(c)
    modes = ["nearest-even", "nearest-away", "nearest-zero", "up", "down", "toward-zero", "odd"]
    for op, operands in [
        ("add", (a, b)),
        ("sub", (a, b)),
        ("mul", (a, b)),
        ("div", (a, b)),
        ("fma", (a, b, c)),
        ("sqrt", (np.abs(a),)),
        ("round", (a,)),
    ]:
        for mode in modes:
            results = {}
            for backend in ("numpy", "numba"):
                monkeypatch.setattr(elementwise, "BACKEND", backend)
                flags = arith.Flags()
                try:
                    values = getattr(arith, op)(
                        *operands, fmt, rounding=mode, flags=flags, **options
                    )
                except NumfmtError as exc:  # the same refusal, by the same element
                    results[backend] = (str(exc), None)
                    continue
                results[backend] = (values, flags.to_dict())
            (want, want_flags), (got, got_flags) = results["numpy"], results["numba"]
            if isinstance(want, str):
                assert got == want, (op, mode)
                continue
            assert np.array_equal(want, got, equal_nan=True), (op, mode)
            assert np.array_equal(np.signbit(want), np.signbit(got)), (op, mode)
            assert want_flags == got_flags, (op, mode)


@pytest.mark.parametrize("name", ["fp16", "bf16", "fp8_e4m3", "e4m3fnuz", "fp4_e2m1", "e8m0"])
def test_torch_operations_path_agrees_with_the_kernels(monkeypatch, name):
    """The path a GPU tensor takes (torch's own operations, the general path's few elements on
    the host), run here on CPU tensors: the same bits, signs, flags and refusals as the
    kernels, in every mode (stochastic with the same seed) and with the options."""
    torch = pytest.importorskip("torch")
    fmt = get_format(name)
    pool = np.concatenate([targeted(fmt, 150, seed=12), [0.0, -0.0, np.inf, -np.inf, np.nan]])
    rng = np.random.default_rng(13)
    a, b, c = (torch.from_numpy(rng.choice(pool, 3000)) for _ in range(3))
    if not fmt.signed:
        a, b, c = a.abs(), b.abs(), c.abs()
    modes = ["nearest-even", "nearest-away", "up", "down", "toward-zero", "odd", "stochastic"]
    cases = [("add", (a, b)), ("sub", (a, b)), ("mul", (a, b)), ("div", (a, b))]
    cases += [("fma", (a, b, c)), ("sqrt", (a.abs(),)), ("round", (a,)), ("neg", (a,))]
    for op, operands in cases:
        for mode in modes:
            for options in ({}, {"daz": True, "ftz": True}, {"overflow": "saturate"}):
                results = []
                for on_torch in (False, True):
                    monkeypatch.setattr(elementwise, "TORCH_ON_CPU", on_torch)
                    flags = arith.Flags()
                    kw = dict(rounding=mode, flags=flags, seed=4, **options)
                    try:
                        got = getattr(arith, op)(*operands, fmt, **kw)
                    except NumfmtError as exc:
                        results.append((str(exc), None))
                        continue
                    results.append((got, flags.to_dict()))
                (want, want_flags), (got, got_flags) = results
                if isinstance(want, str) or isinstance(got, str):
                    assert got == want, (op, mode, options)
                    continue
                assert got.dtype == want.dtype and got.shape == want.shape
                assert torch.equal(got.isnan(), want.isnan()), (op, mode, options)
                same = got.isnan() | ((got == want) & (got.signbit() == want.signbit()))
                assert bool(same.all()), (op, mode, options)
                assert got_flags == want_flags, (op, mode, options)


def test_torch_operations_path_broadcasts_and_keeps_dtype(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(elementwise, "TORCH_ON_CPU", True)
    x = torch.randn(4, 1, dtype=torch.bfloat16)
    y = torch.randn(3, dtype=torch.float32)
    got = arith.mul(x, y, "bf16")
    assert got.shape == (4, 3) and got.dtype == torch.bfloat16
    monkeypatch.setattr(elementwise, "TORCH_ON_CPU", False)
    assert torch.equal(got, arith.mul(x, y, "bf16"))
    monkeypatch.setattr(elementwise, "TORCH_ON_CPU", True)
    with pytest.raises(NumfmtError, match="do not broadcast"):
        arith.add(torch.ones(2), torch.ones(3), "fp16")
    with pytest.raises(NumfmtError, match=r"\(index 2\)"):
        arith.div(
            torch.tensor([1.0, 2.0, 3.0]),
            torch.tensor([1.0, 1.0, 0.0]),
            "fp8_e4m3",
            overflow="error",
        )


def test_formats_beyond_float64_and_without_subnormals():
    """Formats with values float64 cannot hold are refused (results are float64); e11m4,
    within float64's range, computes up to its edge; formats without subnormals flag what
    moves below their smallest normal."""
    for name in ("e11m4fn", "e12m3"):  # results are float64: refused, with the reason
        with pytest.raises(NumfmtError, match="beyond float64's range"):
            arith.add(1.0, 1.0, name)
        with pytest.raises(NumfmtError, match="beyond float64's range"):
            arith.sum([1.0, 2.0], name)
    assert float(arith.add(2.0**1023, 2.0**1023, "e11m4", overflow="saturate")) == float(
        get_format("e11m4").max_value
    )
    for n in (4, 4096):  # the Python loop and the kernel
        flags = arith.Flags()
        out = arith.round(np.full(n, 2.0**-128), "e8m0", flags=flags)
        assert float(out[0]) == 2.0**-127
        assert flags.inexact == n and flags.underflow == n
        flags = arith.Flags()  # no zero in e8m0: an exact zero is NaN, and invalid
        assert np.isnan(arith.sub(np.ones(n), np.ones(n), "e8m0", flags=flags)).all()
        assert flags.invalid == n


def test_torch_reads_slices_zero_dims_and_refuses_what_it_cannot_read(monkeypatch):
    torch = pytest.importorskip("torch")
    for on_torch in (False, True):
        monkeypatch.setattr(elementwise, "TORCH_ON_CPU", on_torch)
        x = torch.arange(1.0, 41.0)[::2]  # a strided view
        assert torch.equal(arith.mul(x, torch.ones_like(x), "bf16"), x)
        grid = torch.arange(1.0, 17.0).reshape(4, 4)[:, ::2]
        assert torch.equal(arith.mul(grid, grid, "fp16"), grid * grid)
        assert arith.add(torch.tensor(1.0), 2.0, "fp16").shape == ()
        assert arith.add(torch.zeros(0), 1.0, "fp16").shape == (0,)
        with pytest.raises(NumfmtError, match="beyond 2\\^53"):
            arith.add(torch.tensor([2**60 + 1]), torch.tensor([1.0]), "fp16")
        with pytest.raises(NumfmtError, match="complex"):
            arith.add(torch.tensor([1 + 2j]), torch.tensor([1.0]), "fp16")
        with pytest.raises(NumfmtError, match=r"nan \+ 0.375 is NaN"):  # as given, before daz
            arith.add(torch.tensor([float("nan"), 1.0]), 0.375, "fp4_e2m1", daz=True)
    with pytest.raises(NumfmtError, match="beyond 2\\^53"):
        arith.add(np.array([2**53 + 1]), 1.0, "fp16")


def test_one_value_operands_broadcast_without_copies():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(5000).astype(np.float32)
    for op in ("add", "mul", "div"):
        full = getattr(arith, op)(x, np.full_like(x, np.float32(0.3)), "bf16")
        assert np.array_equal(getattr(arith, op)(x, np.float32(0.3), "bf16"), full)
    assert np.array_equal(
        arith.fma(np.float32(1.5), x, np.float32(-0.25), "fp16"),
        arith.fma(np.full_like(x, 1.5), x, np.full_like(x, -0.25), "fp16"),
    )
    # a one-value operand that float32 cannot hold makes the whole operation float64
    exact = arith.add(x, 0.1, "fp32")
    assert exact.dtype == np.float64
    assert np.array_equal(exact, arith.add(x.astype(np.float64), np.full(x.size, 0.1), "fp32"))


def test_dtypes_and_broadcasting():
    x32 = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert arith.add(x32, np.float32(0.5), "fp16").dtype == np.float32
    assert arith.add(x32, 0.5, "fp16").dtype == np.float64  # a Python float is float64
    assert arith.add(x32, np.float32(0.5), "e5m10").shape == (2, 3)
    assert arith.mul(x32, np.array([1.0, 2.0, 3.0]), "fp16").shape == (2, 3)
    assert arith.add(np.zeros(0), np.zeros(0), "fp16").shape == (0,)
    with pytest.raises(NumfmtError, match=r"\(2, 3\) and \(2,\) do not broadcast"):
        arith.add(x32, np.ones(2), "fp16")


def test_torch_in_torch_out():
    torch = pytest.importorskip("torch")
    a = torch.randn(5000, dtype=torch.float32)
    b = torch.randn(5000, dtype=torch.float32)
    for fmt in ("fp16", "bf16", "fp8_e4m3"):
        t = arith.add(a, b, fmt, rounding="down")
        n = arith.add(a.numpy(), b.numpy(), fmt, rounding="down")
        assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
        assert np.array_equal(t.numpy(), n)
    h = arith.mul(a.half(), b.half(), "fp16")
    assert h.dtype == torch.float16  # fp16's values fit float16
    assert arith.mul(a.bfloat16(), b.bfloat16(), "fp16").dtype == torch.float32


def test_integer_and_fixed_point_targets():
    assert arith.add(100, 27, "int8").item() == 127
    assert arith.add(100, 28, "int8", overflow="saturate").item() == 127
    assert arith.add(100, 28, "int8", overflow="wrap").item() == -128
    with pytest.raises(NotRepresentableError, match="does not fit in int8"):
        arith.add(100, 28, "int8")
    assert arith.div(7, 2, "int8").item() == 4  # 3.5: ties to even
    assert arith.div(7, 2, "int8", rounding="toward-zero").item() == 3
    assert arith.div(-7, 2, "int8", rounding="odd").item() == -3
    got = arith.mul(np.array([1.0625, -2.5]), 0.3125, "q3.4", rounding="nearest-even")
    # Python's round() ties to even, as the mode asks: -2.5 * 0.3125 = -12.5 / 16 -> -12 / 16
    want = [round(Fraction(x) * Fraction(0.3125) * 16) / 16 for x in (1.0625, -2.5)]
    assert got.tolist() == want
    with pytest.raises(NotRepresentableError, match="divides by zero"):
        arith.div(1, 0, "int8", overflow="saturate")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: arith.add(1.0, 2.0, "fp99"), "fp99"),
        (lambda: arith.add(1.0, 2.0, "fp16", rounding="sideways"), "unknown rounding mode"),
        (lambda: arith.add(1.0, 2.0, "float64"), "up to 51 significand bits"),
        (lambda: arith.add(1, 2, "int64"), "up to 50 bits"),
        (lambda: arith.add("0.1", 2.0, "fp16"), "not text"),
        (lambda: arith.div(0.0, 0.0, "e2m1"), "0 / 0 is invalid"),
        (lambda: arith.div(1.0, 0.0, "e2m1", overflow="error"), "divides by zero"),
        (lambda: arith.mul(448.0, 2.0, "fp8_e4m3", overflow="error"), "beyond the range"),
        (lambda: arith.add(1.0, 2.0, "fp16", overflow="wrap"), "is for integers"),
        (lambda: arith.add(1.0, 2.0, "fp16", random_bits=0), "random_bits"),
        (lambda: arith.add(1.0, 2.0, "fp16", rounding_mode="up"), "unknown options"),
    ],
    ids=[
        "format",
        "mode",
        "binary64",
        "int64",
        "text",
        "nan-into-fp4",
        "div-by-zero-error",
        "overflow-error",
        "wrap-float",
        "random-bits",
        "option",
    ],
)
def test_bad_input_says_why(call, message):
    with pytest.raises((NumfmtError, TypeError, FormatNameError), match=message):
        call()


@pytest.mark.parametrize("fused", [True, False])
def test_cuda_tensors_stay_on_their_device_with_the_same_bits(monkeypatch, fused):
    """On a GPU: the fused Triton kernel (where triton is installed) and torch's operations
    give the host kernels' bits, signs and flags, and the tensors stay on the device."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    monkeypatch.setattr(elementwise, "FUSED_ON_CUDA", fused)
    for name in ("fp16", "bf16", "fp8_e4m3", "fp4_e2m1"):
        fmt = get_format(name)
        pool = np.concatenate([targeted(fmt, 300, seed=14), [0.0, -0.0, np.inf, np.nan]])
        rng = np.random.default_rng(15)
        host = [rng.choice(pool, 20_000) for _ in range(3)]
        dev = [torch.from_numpy(x).to("cuda") for x in host]
        for op, k in (("add", 2), ("mul", 2), ("div", 2), ("fma", 3), ("sqrt", 1)):
            for mode in ("nearest-even", "down", "odd", "stochastic"):
                flags_dev, flags_host = arith.Flags(), arith.Flags()
                kw = dict(rounding=mode, overflow="saturate", seed=3)
                got = getattr(arith, op)(*dev[:k], fmt, flags=flags_dev, **kw)
                want = getattr(arith, op)(*host[:k], fmt, flags=flags_host, **kw)
                assert got.device == dev[0].device and got.dtype == torch.float64
                got = got.cpu().numpy()
                assert np.array_equal(got, want, equal_nan=True), (name, op, mode)
                assert np.array_equal(np.signbit(got), np.signbit(want)), (name, op, mode)
                assert flags_dev.to_dict() == flags_host.to_dict(), (name, op, mode)
    a = torch.randn(10_000, device="cuda")
    got = arith.add(a, np.float32(0.5), "bf16")
    assert got.device == a.device and got.dtype == torch.float32
    assert np.array_equal(got.cpu().numpy(), arith.add(a.cpu().numpy(), np.float32(0.5), "bf16"))
    s = arith.sum(a, "fp16", order="tree")
    assert float(s) == float(arith.sum(a.cpu().numpy(), "fp16", order="tree"))


@pytest.mark.parametrize("mode", ["nearest-even", "toward-zero", "up", "odd"])
@pytest.mark.parametrize("options", [{}, {"ftz": True}, {"daz": True}, {"overflow": "saturate"}])
def test_round_of_a_large_array_is_multiplying_by_one(mode, options):
    """round() of arrays long enough for the vectorised encoder gives the kernel's values and
    flags (the kernel multiplies by 1, one rounding too)."""
    fmt = get_format("fp16")
    rng = np.random.default_rng(12)
    x = np.concatenate([rng.choice(targeted(fmt, 400, seed=13), 5000), [np.nan, np.inf, -0.0]])
    flags_round, flags_mul = arith.Flags(), arith.Flags()
    got = arith.round(x, fmt, rounding=mode, flags=flags_round, **options)
    want = arith.mul(x, 1.0, fmt, rounding=mode, flags=flags_mul, **options)
    assert np.array_equal(got, want, equal_nan=True)
    assert np.array_equal(np.signbit(got), np.signbit(want))
    assert flags_round.to_dict() == flags_mul.to_dict()


def test_random_bits_and_seed_hold_for_round_too():
    x = np.full(100_000, 1 + 0.3 * 2.0**-10)
    assert not (arith.round(x, "fp16", rounding="stochastic", random_bits=1) > 1).any()
    with pytest.raises(NumfmtError, match="seed"):
        arith.round(x[:3], "fp16", rounding="stochastic", seed=-1)
