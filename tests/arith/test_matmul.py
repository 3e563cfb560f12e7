"""numfmt.arith.matmul: the hardware models bit for bit against MMA-Sim's reference code, the
fused and term-by-term paths against independent references written here with Fractions and
numfmt's checked elementwise operations, and bad input refused."""

from __future__ import annotations

import math
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from numfmt.arith import add, fma
from numfmt.arith import round as round_to
from numfmt.arith.context import Context
from numfmt.arith.hardware import MODELS, Fused
from numfmt.arith.matmul import matmul, plan
from numfmt.arith.matmul_error import exact_product, matmul_error
from numfmt.errors import NumfmtError

MMA_SIM = Path(__file__).resolve().parents[3] / "shared" / "ref" / "MMA-Sim"


def _wild(rng, shape, fmt, low=-20, high=12):
    """Values over a wide range of exponents, with zeros and subnormals, put into fmt."""
    v = rng.standard_normal(shape) * 2.0 ** rng.integers(low, high, size=shape)
    v[rng.random(shape) < 0.15] = 0.0
    return np.asarray(round_to(v, fmt, overflow="saturate"), dtype=np.float64)


# -- MMA-Sim ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mmasim():
    if not (MMA_SIM / "mmasim").is_dir():
        pytest.skip("MMA-Sim's reference code is not at ../shared/ref/MMA-Sim")
    pytest.importorskip("torch")
    sys.path.insert(0, str(MMA_SIM))
    try:
        from mmasim.simulator import nv_ptx
    finally:
        sys.path.remove(str(MMA_SIM))
    return nv_ptx


#: (instruction, its qualifier, numfmt's model, input format, accumulator override)
INSTRUCTIONS = [
    ("wgmma", "Hopper", "m64n8k32.f32.e4m3.e4m3", "hopper-fp8", "e4m3", None),
    ("wgmma", "Hopper", "m64n8k32.f32.e5m2.e5m2", "hopper-fp8", "e5m2", None),
    ("wgmma", "Hopper", "m64n8k32.f16.e4m3.e4m3", "hopper-fp8", "e4m3", "fp16"),
    ("wgmma", "Hopper", "m64n8k16.f32.f16.f16", "hopper-fp16", "fp16", None),
    ("wgmma", "Hopper", "m64n8k16.f16.f16.f16", "hopper-fp16", "fp16", "fp16"),
    ("wgmma", "Hopper", "m64n8k16.f32.bf16.bf16", "hopper-bf16", "bf16", None),
    ("mma", "Ampere", "m16n8k16.f32.f16.f16.f32", "ampere-fp16", "fp16", None),
    ("mma", "Ampere", "m16n8k16.f16.f16.f16.f16", "ampere-fp16", "fp16", "fp16"),
    ("mma", "Ampere", "m16n8k16.f32.bf16.bf16.f32", "ampere-bf16", "bf16", None),
    ("mma", "Ada Lovelace", "m16n8k32.f32.e4m3.e4m3.f32", "ada-fp8", "e4m3", None),
    ("tcgen05mma", "Blackwell", "m64n8k32.f32.e4m3.e4m3", "blackwell-fp8", "e4m3", None),
    ("tcgen05mma", "Blackwell", "m64n8k16.f32.f16.f16", "blackwell-fp16", "fp16", None),
]
_TORCH = {"e4m3": "float8_e4m3fn", "e5m2": "float8_e5m2", "fp16": "float16", "bf16": "bfloat16"}


@pytest.mark.parametrize("kind,arch,qualifier,model,fmt,acc", INSTRUCTIONS)
def test_hardware_models_match_mma_sim_bit_for_bit(mmasim, kind, arch, qualifier, model, fmt, acc):
    """Four instructions chained (each one's D the next one's C), inputs over a wide range
    with zeros and subnormals, as numfmt's model of the same unit: every output equal, sign
    of zero and infinities included."""
    import torch

    inst = getattr(mmasim, kind)(arch, qualifier)
    rng = np.random.default_rng(hash(qualifier) % 2**32)
    chain = 4
    a = _wild(rng, (inst.m, inst.k * chain), fmt)
    b = _wild(rng, (inst.k * chain, inst.n), fmt)
    dtype = getattr(torch, _TORCH[fmt])
    ta, tb = torch.tensor(a).to(dtype), torch.tensor(b).to(dtype)
    c = torch.zeros((inst.m, inst.n), dtype=inst.c_type)
    for i in range(chain):
        part = slice(i * inst.k, (i + 1) * inst.k)
        c = inst(ta[:, part], tb[part, :], c)
    ref = c.double().numpy()
    extra = {"inputs": fmt} if fmt != MODELS[model].inputs else {}
    if acc is not None:
        extra["accumulator"] = acc
    ours = matmul(a, b, model=model, **extra)
    same = (ours == ref) & (np.signbit(ours) == np.signbit(ref))
    assert same.all(), f"{int((~same).sum())} of {same.size} outputs differ from MMA-Sim"


def test_mx_block_scales_match_mma_sim(mmasim):
    """RTX Blackwell's mxf8 instruction (E8M0 scales per 32 elements) as blackwell-fp8 with
    power-of-two scales: the scales enter as exponents, exactly."""
    import torch

    inst = mmasim.mma_block_scale("RTX Blackwell", "m16n8k32.block32.f32.e4m3.e4m3.f32.ue8m0")
    rng = np.random.default_rng(5)
    a, b = _wild(rng, (16, 32), "e4m3"), _wild(rng, (32, 8), "e4m3")
    sa = 2.0 ** rng.integers(-20, 20, size=(16, 1)).astype(np.float64)
    sb = 2.0 ** rng.integers(-20, 20, size=(1, 8)).astype(np.float64)
    ref = inst(
        torch.tensor(a).to(torch.float8_e4m3fn),
        torch.tensor(b).to(torch.float8_e4m3fn),
        torch.zeros((16, 8)),
        torch.tensor(sa).to(torch.float8_e8m0fnu),
        torch.tensor(sb).to(torch.float8_e8m0fnu),
    )
    ours = matmul(a, b, model="blackwell-fp8", scales=(sa, sb))
    assert np.array_equal(ours, ref.double().numpy())


# -- the fused path against Fractions ----------------------------------------------------------
def _fraction_fused(a, b, size, bits, cut, acc: Context, emin_in):
    """The fused accumulation written out with Fractions, one output at a time."""

    def exponent(x: Fraction, emin: int) -> int:
        if x == 0:
            return -126
        e = math.floor(math.log2(abs(x)))
        while Fraction(2) ** e > abs(x):
            e -= 1
        while Fraction(2) ** (e + 1) <= abs(x):
            e += 1
        return max(e, emin)

    emin_acc = acc.fmt.emin
    out = np.zeros((a.shape[0], b.shape[1]))
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            c = Fraction(0)
            for k0 in range(0, a.shape[1], size):
                xs = [Fraction(float(v)) for v in a[i, k0 : k0 + size]]
                ys = [Fraction(float(v)) for v in b[k0 : k0 + size, j]]
                top = max(
                    [exponent(c, emin_acc)]
                    + [
                        exponent(x, emin_in) + exponent(y, emin_in)
                        for x, y in zip(xs, ys, strict=True)
                    ]
                )
                unit = Fraction(2) ** (top - bits)
                terms = [c] + [x * y for x, y in zip(xs, ys, strict=True)]
                s = sum(cut(t / unit) for t in terms) * unit
                c = Fraction(float(acc.round(float(s))))  # s is a float64 exactly
                assert Fraction(float(s)) == s
            out[i, j] = float(c)
    return out


CUTS = {
    "toward-zero": math.trunc,
    "nearest-even": round,  # Python's round of a Fraction is to nearest, ties to even
    "down": math.floor,
    "up": math.ceil,
}


@pytest.mark.parametrize("rounding", list(CUTS))
def test_fused_groups_against_fractions(rounding):
    rng = np.random.default_rng(11)
    a, b = _wild(rng, (3, 24), "bf16"), _wild(rng, (24, 4), "bf16")
    acc = Context("e8m10", rounding="toward-zero")
    ours = matmul(a, b, inputs="bf16", accumulator=acc, fused=Fused(8, 9, rounding))
    from numfmt.formats.registry import get_format

    ref = _fraction_fused(a, b, 8, 9, CUTS[rounding], acc, get_format("bf16").emin)
    assert np.array_equal(ours, ref)


# -- term by term, against numfmt's elementwise operations (checked against MPFR) ---------------
def _columns(a, b):
    return [(a[:, k][:, None], b[k, :][None, :]) for k in range(a.shape[1])]


def test_sequential_is_an_fma_chain():
    rng = np.random.default_rng(2)
    a, b = _wild(rng, (5, 40), "bf16"), _wild(rng, (40, 6), "bf16")
    acc = np.zeros((5, 6))
    for x, y in _columns(a, b):
        acc = np.asarray(fma(x, y, acc, "bf16"), dtype=np.float64)
    assert np.array_equal(matmul(a, b, model="bf16-accumulate"), acc)


def test_rounded_products_then_kahan():
    rng = np.random.default_rng(3)
    a, b = _wild(rng, (4, 30), "fp16", -12, 4), _wild(rng, (30, 3), "fp16", -12, 4)
    s, comp = np.zeros((4, 3)), np.zeros((4, 3))
    for x, y in _columns(a, b):
        p = np.asarray(round_to(x * y, "fp16"), dtype=np.float64)  # x*y is exact in float64
        yk = np.asarray(add(p, -comp, "fp16"), dtype=np.float64)
        t = np.asarray(add(s, yk, "fp16"), dtype=np.float64)
        d = np.asarray(add(t, -s, "fp16"), dtype=np.float64)
        comp = np.asarray(add(d, -yk, "fp16"), dtype=np.float64)
        s = t
    ours = matmul(a, b, inputs="fp16", products="fp16", accumulator="fp16", order="kahan")
    assert np.isfinite(s).all() and np.array_equal(ours, s)


@pytest.mark.parametrize(
    "settings",
    [
        {"inputs": None, "accumulator": "fp32"},  # float64 operands: products need the FMA
        {"inputs": "bf16", "accumulator": Context("bf16", rounding="toward-zero")},
        {"inputs": "bf16", "accumulator": Context("bf16", rounding="stochastic"), "seed": 4},
        {"inputs": "bf16", "accumulator": "fp16", "order": "tile:16", "promote_every": 96},
        {
            "inputs": "fp16",
            "products": Context("bf16", rounding="stochastic"),
            "accumulator": "fp16",
            "order": "kahan",
        },
        {"inputs": None, "accumulator": Context("bf16", rounding="up"), "order": "kahan"},
        # a stalled bf16 sum: terms that cancel, whose zero is negative only rounding down
        {"inputs": "bf16", "accumulator": Context("bf16", rounding="down"), "order": "kahan"},
    ],
)
def test_the_column_kernel_gives_the_bits_of_one_element_at_a_time(settings):
    # the vectorised kernel (blocks of output columns, the general path for what its fast
    # path cannot finish) against the scalar one, each operation through the general path;
    # N = 530 spans two column blocks; zeros and tiny values send elements the general way
    from numfmt.arith import _mm_jit
    from numfmt.arith import matmul as mm

    rng = np.random.default_rng(11)
    a = rng.standard_normal((3, 200)) * np.exp2(rng.integers(-30, 12, (3, 200)))
    b = rng.standard_normal((200, 530))
    a[0, :7] = 0.0
    b[5] = 0.0
    p = mm.plan(**settings)
    ours = mm.run(a, b, p)
    x, y, _ = mm._operands(a, b)
    if p.inputs is not None:
        x, y = mm._round_inputs(x, p.inputs, "a"), mm._round_inputs(y, p.inputs, "b")
    sa, sb, every, _ = mm._scales(None, 3, 530, 200, p)
    scalar = np.zeros((3, 530))
    codes = {"sequential": 0, "kahan": 1, "tile": 2}
    prod = mm._kernel_args(p.products or p.accumulator)
    _mm_jit.general(x, y, sa, sb, scalar, codes[p.order], max(p.tile, 1), every or 0, prod,
                    p.products is None, mm._kernel_args(p.accumulator),
                    mm._kernel_args(p.promote_to), p.seed, 0, 3)  # fmt: skip
    assert np.array_equal(ours.view(np.int64), scalar.view(np.int64))


def test_accumulator_overflow_is_infinity_or_refused():
    a, b = np.full((1, 4), 60000.0), np.full((4, 1), 1.0)
    assert matmul(a, b, inputs="fp16", accumulator="fp16")[0, 0] == np.inf
    with pytest.raises(NumfmtError, match="left the range of float16"):
        matmul(a, b, inputs="fp16", accumulator=Context("fp16", overflow="error"))


def test_pairwise_and_tiles():
    rng = np.random.default_rng(4)
    a, b = _wild(rng, (3, 13), "bf16"), _wild(rng, (13, 2), "bf16")
    products = a[:, :, None] * b[None, :, :]  # exact in float64
    level = [products[:, k, :] for k in range(13)]
    while len(level) > 1:
        nxt = [
            np.asarray(add(level[q], level[q + 1], "bf16"), dtype=np.float64)
            for q in range(0, len(level) - 1, 2)
        ]
        level = nxt + ([level[-1]] if len(level) % 2 else [])
    ours = matmul(a, b, inputs="bf16", accumulator="bf16", order="pairwise")
    assert np.array_equal(ours, level[0])
    # tile:4: tiles from zero by fma, each added to the running sum
    total = np.zeros((3, 2))
    for t0 in range(0, 13, 4):
        part = np.zeros((3, 2))
        for x, y in _columns(a[:, t0 : t0 + 4], b[t0 : t0 + 4]):
            part = np.asarray(fma(x, y, part, "bf16"), dtype=np.float64)
        total = np.asarray(add(total, part, "bf16"), dtype=np.float64)
    assert np.array_equal(matmul(a, b, inputs="bf16", accumulator="bf16", order="tile:4"), total)


def test_promotion_adds_each_block_into_fp32():
    rng = np.random.default_rng(6)
    a, b = rng.random((4, 384)), rng.random((384, 5))
    total = np.zeros((4, 5))
    for k0 in range(0, 384, 128):
        part = matmul(a[:, k0 : k0 + 128], b[k0 : k0 + 128], model="hopper-fp8")
        total = np.asarray(add(total, part, "fp32"), dtype=np.float64)
    assert np.array_equal(matmul(a, b, model="hopper-fp8-promote128"), total)


def test_non_power_of_two_scales_multiply_each_promoted_block():
    rng = np.random.default_rng(7)
    a = np.asarray(round_to(rng.standard_normal((3, 256)), "e4m3"), dtype=np.float64)
    b = np.asarray(round_to(rng.standard_normal((256, 4)), "e4m3"), dtype=np.float64)
    sa, sb = rng.random((3, 2)) + 0.5, rng.random((2, 1)) + 0.5  # one scale per 128x128 tile
    total = np.zeros((3, 4))
    for blk in range(2):
        part = matmul(
            a[:, blk * 128 : (blk + 1) * 128], b[blk * 128 : (blk + 1) * 128], model="hopper-fp8"
        )
        total = np.asarray(
            fma(part, sa[:, blk : blk + 1] * sb[blk], total, "fp32"), dtype=np.float64
        )
    ours = matmul(a, b, model="hopper-fp8", scales=(sa, sb))
    assert np.array_equal(ours, total)


# -- what the models show ------------------------------------------------------------------------
def test_deepseek_promotion_fixes_the_fp8_accumulator():
    """K = 4096 positive products: the e8m13 accumulator loses percents; promoting every 128
    terms to fp32 brings it below 0.1%; fp32 stays near its own rounding."""
    r = matmul_error(
        ["fp32", "hopper-fp8", "hopper-fp8-promote128"], k=4096, m=8, n=8, dist="uniform"
    )
    err = {row.model: row.max_rel for row in r.rows}
    assert err["hopper-fp8"] > 0.01
    assert err["hopper-fp8-promote128"] < 0.002
    assert err["fp32"] < 1e-5
    assert err["hopper-fp8"] > 20 * err["hopper-fp8-promote128"]


def test_bf16_accumulator_stalls_and_kahan_recovers():
    a, b = np.full((1, 4096), 1.0), np.full((4096, 1), 2.0**-6)
    assert matmul(a, b, model="fp32")[0, 0] == 64.0
    assert matmul(a, b, model="bf16-accumulate")[0, 0] == 4.0  # 4 + 2^-6 rounds back to 4
    assert matmul(a, b, model="kahan")[0, 0] == 64.0


def test_exact_product_is_exact_for_fp8_operands():
    rng = np.random.default_rng(8)
    a = np.asarray(round_to(rng.standard_normal((2, 50)), "e4m3"), dtype=np.float64)
    b = np.asarray(round_to(rng.standard_normal((50, 2)), "e4m3"), dtype=np.float64)
    ref = [
        [
            float(
                sum(
                    Fraction(float(x)) * Fraction(float(y))
                    for x, y in zip(a[i], b[:, j], strict=True)
                )
            )
            for j in range(2)
        ]
        for i in range(2)
    ]
    assert np.array_equal(exact_product(a, b), np.array(ref))


def test_stochastic_accumulator_repeats_and_does_not_depend_on_threads():
    rng = np.random.default_rng(9)
    a, b = rng.random((40, 64)), rng.random((64, 3))
    acc = Context("bf16", rounding="stochastic")
    one = matmul(a, b, inputs="bf16", accumulator=acc, seed=1)
    assert np.array_equal(one, matmul(a, b, inputs="bf16", accumulator=acc, seed=1))
    assert not np.array_equal(one, matmul(a, b, inputs="bf16", accumulator=acc, seed=2))
    rows = np.vstack(
        [matmul(a[i : i + 1], b, inputs="bf16", accumulator=acc, seed=1) for i in range(0, 40, 13)]
    )
    assert np.array_equal(rows[0], one[0])


def test_shapes_and_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(10)
    a, b = rng.standard_normal((2, 3, 64)), rng.standard_normal((64, 5))
    out = matmul(a, b, model="hopper-fp8")
    assert out.shape == (2, 3, 5)
    assert np.array_equal(out[1], matmul(a[1], b, model="hopper-fp8"))
    assert matmul(a[0, 0], b, model="hopper-fp8").shape == (5,)
    t = matmul(
        torch.tensor(a, dtype=torch.float32),
        torch.tensor(b, dtype=torch.float32),
        model="hopper-fp8",
    )
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
    same = matmul(a.astype(np.float32), b.astype(np.float32), model="hopper-fp8")
    assert np.array_equal(t.double().numpy(), same)


_DEVICE_CASES = [
    *({"model": name} for name in MODELS),
    {"model": "hopper-fp8", "fused": "32:13:nearest-even", "promote_every": 64},
    {"inputs": "bf16", "products": "bf16", "accumulator": "fp16", "order": "tile:8"},
    {"inputs": "fp16", "accumulator": Context("bf16", rounding="down"), "promote_every": 40},
]


def _device_bits_agree(device, monkeypatch):
    torch = pytest.importorskip("torch")
    from numfmt.arith import elementwise

    rng = np.random.default_rng(12)
    a = rng.standard_normal((4, 128)) * np.exp2(rng.integers(-8, 6, (4, 128)))
    b = rng.standard_normal((128, 70))
    a[0, :40] = 0.0
    for settings in _DEVICE_CASES:
        k = 128 if plan(**settings).fused else 24  # term by term: a step of K at a time
        host = matmul(a[:, :k], b[:k], **settings)
        if device == "cpu":  # the device kernels, run on the CPU
            monkeypatch.setattr(elementwise, "TORCH_ON_CPU", True)
        ours = matmul(torch.tensor(a[:, :k], device=device), torch.tensor(b[:k], device=device),
                      **settings)  # fmt: skip
        monkeypatch.setattr(elementwise, "TORCH_ON_CPU", False)
        assert ours.device.type == device
        assert np.array_equal(ours.cpu().double().numpy(), host), settings
    # block scales that are not powers of two, multiplied at each promotion
    scales = (rng.uniform(0.5, 2, (4, 4)), rng.uniform(0.5, 2, (4, 70)))
    host = matmul(a, b, model="hopper-fp8", inputs=None, scales=scales)
    monkeypatch.setattr(elementwise, "TORCH_ON_CPU", device == "cpu")
    ours = matmul(torch.tensor(a, device=device), b, model="hopper-fp8", inputs=None,
                  scales=scales)  # fmt: skip
    assert np.array_equal(ours.cpu().double().numpy(), host)


def test_the_torch_kernels_give_the_host_bits(monkeypatch):
    # what runs on a GPU, run on the CPU: every model, fused and term by term, promotion,
    # block scales; the same bits as the numba kernels
    _device_bits_agree("cpu", monkeypatch)


@pytest.mark.cuda
def test_the_torch_kernels_give_the_host_bits_on_cuda(monkeypatch):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    _device_bits_agree("cuda", monkeypatch)


# -- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "call,message",
    [
        (lambda a, b: matmul(a, b, model="volta-fp8"), "unknown matmul model"),
        (lambda a, b: matmul(a, b, inputs="fp99"), "fp99"),
        (lambda a, b: matmul(a, b[:32], model="fp32"), "do not multiply"),
        (
            lambda a, b: matmul(a[:, :40], b[:40], model="hopper-fp8"),
            "not a multiple of the fused group",
        ),
        (
            lambda a, b: matmul(a, b, model="hopper-fp8", promote_every=48),
            "not a multiple of the fused group",
        ),
        (lambda a, b: matmul(a, b, model="fp32", order="zigzag"), "unknown matmul order"),
        (lambda a, b: matmul(a, b, model="fp32", order="tile:0"), "tile:T"),
        (lambda a, b: matmul(a, b, fused="32"), "SIZE:BITS"),
        (lambda a, b: matmul(a, b, fused="32:13:stochastic"), "cut by"),
        (lambda a, b: matmul(a, b, model="hopper-fp8", order="pairwise"), "fused group"),
        (lambda a, b: matmul(np.where(a > 1, np.nan, a), b, model="fp32"), "NaN"),
        (lambda a, b: matmul(a * 1000, b, model="hopper-fp8"), "beyond float8_e4m3fn's largest"),
        (
            lambda a, b: matmul(
                a, b, model="hopper-fp8", scales=(np.ones((4, 3)), np.ones((3, 2)))
            ),
            "blocks of equal size",
        ),
        (
            lambda a, b: matmul(
                a, b, model="hopper-fp8", scales=(-np.ones((4, 1)), np.ones((1, 2)))
            ),
            "finite positive",
        ),
        (
            lambda a, b: matmul(
                a,
                b,
                model="hopper-fp8",
                scales=(np.full((4, 2), 0.3), np.ones((2, 2))),
                promote_every=64,
            ),
            "must divide the block",
        ),
        (lambda a, b: matmul(a, b, accumulator="int8"), "float format"),
        (lambda a, b: matmul(a, b, model="fp32", seed=-1), "seed"),
        (lambda a, b: matmul(3.0, b, model="fp32"), "vectors and matrices"),
    ],
)
def test_bad_input_is_refused(call, message):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((4, 64)), rng.standard_normal((64, 2))
    with pytest.raises(NumfmtError, match=message):
        call(a, b)


def test_pairwise_with_exact_products_needs_narrow_operands():
    a, b = np.full((1, 4), 1 / 3), np.full((4, 1), 1 / 7)
    with pytest.raises(NumfmtError, match="24 significant bits"):
        matmul(a, b, accumulator="fp32", order="pairwise")
    assert matmul(a, b, inputs="fp32", accumulator="fp32", order="pairwise").shape == (1, 1)


def test_every_model_names_a_source_and_runs():
    rng = np.random.default_rng(1)
    a, b = rng.random((2, 128)), rng.random((128, 2))
    for name, model in MODELS.items():
        assert model.source and model.summary
        out = matmul(a, b, model=name)
        exact = exact_product(a, b)
        assert np.all(np.abs(out - exact) <= 0.8 * np.abs(exact)), name
