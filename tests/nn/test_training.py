"""Training with low-precision state: the facts of Micikevicius et al. (2018) and Zamirai et al.
(2021) reproduced, each against an independent reference (exact Fractions, torch's own
optimizers and casts, torch.amp.GradScaler)."""

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from numfmt.errors import NumfmtError
from numfmt.formats import get_format
from numfmt.nn import LossScaler, LowPrecisionOptimizer, TrainingStats
from tests.reference import reference_value

FP16 = get_format("fp16")


def _fp16(value) -> Fraction:
    """value (a Fraction) rounded to nearest-even fp16, exactly, by the plain reference."""
    r = reference_value(value, FP16, "nearest-even", "ieee")
    assert isinstance(r, Fraction)
    return r


def _sgd_step(weights, updates, fmt="fp16", update="nearest", steps=1, **options):
    """Weights stored in fmt moved by ``updates`` (SGD, lr 1: gradient = -update) ``steps``
    times; the parameter and the optimizer."""
    w = torch.nn.Parameter(torch.as_tensor(weights, dtype=torch.float32).clone())
    opt = LowPrecisionOptimizer(torch.optim.SGD([w], lr=1.0), fmt, update=update, **options)
    u = torch.as_tensor(updates, dtype=torch.float32)
    for _ in range(steps):
        w.grad = -u.clone()
        opt.step()
    return w, opt


# -- (a) an update is lost below half an ulp of its weight -------------------------------------
def _strided_positive_normal_fp16() -> np.ndarray:
    codes = np.arange(0x0400, 0x7800, 23, dtype=np.uint16)  # 2^-14 up to 2^15, every 23rd
    return codes.view(np.float16).astype(np.float32)


@pytest.mark.parametrize("sign", [1, -1], ids=["up", "down"])
def test_an_fp16_weight_keeps_exactly_the_updates_that_fractions_keep(sign):
    """Weights across fp16's normal range, each moved by w/r for r near 2048 and 4096: the
    stored result is the exact sum rounded once, and an update is counted lost exactly where
    the exact rounding gives the old weight back."""
    w = _strided_positive_normal_fp16()
    ratios = np.array([1024.0, 2047.0, 2048.0, 2049.0, 4095.0, 4096.0, 4097.0], dtype=np.float32)
    weights = np.repeat(w, len(ratios))
    updates = (sign * weights / np.tile(ratios, len(w))).astype(np.float32)
    out, opt = _sgd_step(weights, updates)
    want = [
        _fp16(Fraction(float(a)) + Fraction(float(b)))
        for a, b in zip(weights, updates, strict=True)
    ]
    assert [Fraction(float(v)) for v in out.detach()] == want
    lost = sum(v == Fraction(float(a)) for v, a in zip(want, weights, strict=True))
    assert opt.stats.lost == lost and opt.stats.updates == len(weights)
    assert 0 < lost < len(weights)


def test_the_2048_rule_on_powers_of_two_and_its_other_side():
    """For w = 2^k an update upward is lost exactly when w >= 2048 |u| (Micikevicius et al.,
    section 3.1: fp16 keeps 10 bits after the point, and the tie at w/2048 goes to the even
    w); downward the binade below is twice as fine, so there the limit is 4096."""
    for factor, lost in ((1 - 2**-10, True), (1.0, True), (1 + 2**-10, False)):
        for w in (2.0**k for k in range(-12, 15)):
            u = w / 2048 * factor
            up, opt = _sgd_step([w], [u])
            assert (up.item() == w) is lost and (w >= 2048 * u) is lost, (w, u)
            assert opt.stats.lost == int(lost)
            down, _ = _sgd_step([w], [-u / 2])
            assert (down.item() == w) is lost and (w >= 4096 * (u / 2)) is lost, (w, -u / 2)


def test_small_updates_add_up_under_stochastic_rounding_and_kahan_and_master():
    """64 updates of 2^-13 to weights of 1 (an eighth of fp16's ulp there): nearest loses
    every one; stochastic rounding moves the weights by 64 * 2^-13 = 2^-7 in expectation;
    Kahan's compensation (float32 or bf16) and master weights carry it exactly."""
    n, steps, u = 4096, 64, 2.0**-13
    target = 1 + steps * u  # 1.0078125, an fp16 value
    w, opt = _sgd_step(np.ones(n), np.full(n, u), steps=steps)
    assert torch.all(w == 1.0) and opt.stats.lost == n * steps
    w, opt = _sgd_step(np.ones(n), np.full(n, u), update="stochastic", steps=steps, seed=3)
    # each element's rounding errors are independent with variance at most ulp^2 / 4
    sigma = 2.0**-10 * math.sqrt(steps) / 2 / math.sqrt(n)
    assert abs(w.mean().item() - target) < 5 * sigma
    assert set(np.unique(w.detach().numpy())) <= {1 + k * 2.0**-10 for k in range(20)}
    for update, options in (
        ("kahan", {}),
        ("kahan", {"compensation": "bf16"}),
        ("master", {}),
    ):
        w, _ = _sgd_step(np.ones(n), np.full(n, u), update=update, steps=steps, **options)
        assert torch.all(w == target), update


def test_stochastic_rounding_repeats_with_its_seed():
    def run(seed):
        w, _ = _sgd_step(np.ones(512), np.full(512, 2.0**-12), "bf16", "stochastic", 5, seed=seed)
        return w.detach()

    assert torch.equal(run(7), run(7)) and not torch.equal(run(7), run(8))


def test_the_weights_start_in_the_format_and_master_keeps_the_float32_values():
    start = torch.randn(1000)
    w = torch.nn.Parameter(start.clone())
    opt = LowPrecisionOptimizer(torch.optim.SGD([w], lr=0.1), "bf16", update="master")
    assert torch.equal(w.detach(), start.to(torch.bfloat16).float())  # torch's cast agrees
    assert torch.equal(opt.master_weights()[0], start)


@pytest.mark.parametrize(
    "make",
    [
        lambda p: torch.optim.SGD(p, lr=0.05),
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
        lambda p: torch.optim.Adam(p, lr=1e-3),
        lambda p: torch.optim.AdamW(p, lr=1e-3, weight_decay=0.1),
        lambda p: torch.optim.RMSprop(p, lr=1e-3, momentum=0.5),
    ],
    ids=["sgd", "sgd-nesterov", "adam", "adamw", "rmsprop"],
)
@pytest.mark.parametrize("update", ["nearest", "master"])
def test_in_float32_the_wrapper_is_the_bare_optimizer_bit_for_bit(make, update):
    def net():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))

    bare, ours = net(), net()
    opt_bare = make(bare.parameters())
    opt = LowPrecisionOptimizer(make(ours.parameters()), "fp32", update=update)
    data = torch.Generator().manual_seed(1)
    for _ in range(12):
        x, y = torch.randn(32, 8, generator=data), torch.randint(0, 3, (32,), generator=data)
        for model, o in ((bare, opt_bare), (ours, opt)):
            o.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            o.step()
    for a, b in zip(bare.parameters(), ours.parameters(), strict=True):
        assert torch.equal(a, b)
    assert opt.stats.taken == 12 and opt.stats.lost == 0


def test_optimizer_state_is_rounded_and_its_flushes_counted():
    grads = torch.tensor([1e-5, 1e-3, 0.5, -3.0])
    bare_w = torch.nn.Parameter(torch.ones(4))
    bare = torch.optim.Adam([bare_w], lr=1e-3)
    bare_w.grad = grads.clone()
    bare.step()
    w = torch.nn.Parameter(torch.ones(4))
    opt = LowPrecisionOptimizer(torch.optim.Adam([w], lr=1e-3), "bf16", state="fp16")
    w.grad = grads.clone()
    opt.step()
    flushed = 0
    for key in ("exp_avg", "exp_avg_sq"):
        want = bare.state[bare_w][key]
        assert torch.equal(opt.state[w][key], want.half().float())  # torch's cast agrees
        flushed += int(((want != 0) & (want.half() == 0)).sum())
    # exp_avg_sq = 0.001 g^2: 1e-13 and 1e-9 lie below fp16's smallest subnormal (6e-8)
    assert opt.stats.state_underflowed == flushed == 2
    assert opt.state[w]["step"].item() == 1.0  # the step counter is not rounded


# -- (b) gradients below 2^-24 underflow in fp16; loss scaling keeps them ----------------------
GRADS = [2.0**-k for k in range(12, 34)] + [
    0.75 * 2.0**-24,
    0.625 * 2.0**-24,
    0.375 * 2.0**-24,
    0.75,
]


def test_gradients_under_fp16s_smallest_subnormal_underflow_and_are_counted():
    g = torch.tensor(GRADS)
    w = torch.nn.Parameter(torch.zeros(len(GRADS)))
    opt = LowPrecisionOptimizer(torch.optim.SGD([w], lr=0.0), "fp32", grads="fp16")
    w.grad = g.clone()
    opt.step()
    want = [_fp16(Fraction(v)) for v in GRADS]
    assert [Fraction(v) for v in w.grad.tolist()] == want
    assert torch.equal(w.grad, g.half().float())
    # 2^-25 is a tie between 0 and 2^-24 (even: 0); above it values round up to 2^-24
    zero = [v for v, r in zip(GRADS, want, strict=True) if r == 0]
    kept = [v for v, r in zip(GRADS, want, strict=True) if r != 0]
    assert max(zero) == 2.0**-25 and min(kept) == 0.625 * 2.0**-24
    assert opt.stats.underflowed == len(zero) == 10
    assert opt.stats.underflow_share == 10 / len(GRADS)


def test_loss_scaling_lifts_them_above_fp16s_floor():
    g = torch.tensor(GRADS)
    w = torch.nn.Parameter(torch.zeros(len(GRADS)))
    opt = LowPrecisionOptimizer(torch.optim.SGD([w], lr=1.0), "fp32", grads="fp16")
    scaler = LossScaler(init_scale=2.0**16)
    scaler.scale((w * g).sum()).backward()  # gradients of the scaled loss: g * 2^16, in fp32
    assert scaler.step(opt)
    assert opt.stats.underflowed == 0 and opt.stats.overflowed == 0
    # unscaled, each gradient is the fp16 rounding of g * 2^16, divided by 2^16 again
    want = [_fp16(Fraction(v) * 2**16) / 2**16 for v in GRADS]
    assert [Fraction(v) for v in w.grad.tolist()] == want
    assert [Fraction(-v) for v in w.tolist()] == want  # the step used them


def test_an_overflow_to_inf_in_fp16_skips_the_step_and_halves_the_scale():
    w = torch.nn.Parameter(torch.ones(2))
    opt = LowPrecisionOptimizer(torch.optim.SGD([w], lr=0.5), "fp16", grads="fp16")
    scaler = LossScaler(init_scale=2.0**16)
    scaler.scale((w * torch.tensor([1.0, 1e-3])).sum()).backward()  # 65536 > fp16's 65504
    assert not scaler.step(opt)
    scaler.update()
    assert torch.equal(w.detach(), torch.ones(2)) and scaler.get_scale() == 2.0**15
    assert opt.stats.overflowed == 1 and opt.stats.skipped == 1 and opt.stats.taken == 0
    opt.zero_grad()
    scaler.scale((w * torch.tensor([1.0, 1e-3])).sum()).backward()
    assert scaler.step(opt)
    g = (torch.tensor(1e-3) * 2**15).half().float() / 2**15
    assert w.tolist() == [0.5, (1 - 0.5 * g).half().item()]


def _stream(n=60, seed=0):
    """Gradients of a few steps: mostly tame, some with an inf or a NaN injected, some large
    enough to overflow fp16 once scaled."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        g = torch.randn(16, generator=gen) * 1e-3
        if i in (4, 5, 23):
            g[3] = math.inf
        if i == 31:
            g[0] = math.nan
        if i in (12, 40, 41):
            g[7] = 8.0  # times a scale of 2^13 or more: inf in fp16
        out.append(g)
    return out


@pytest.mark.parametrize("grads", [None, "fp16"], ids=["fp32-grads", "fp16-grads"])
def test_the_scale_follows_torch_amp_grad_scaler_step_for_step(grads):
    """The same gradient stream through our scaler and through torch.amp.GradScaler on the
    CPU: the same scale after every step, the same steps skipped, the same weights. For fp16
    gradients, GradScaler is given the gradients torch's own cast to float16 makes of the
    scaled ones (where overflow becomes inf)."""
    settings = {"init_scale": 2.0**16, "growth_interval": 3}
    ref_w = torch.nn.Parameter(torch.zeros(16))
    ref_opt = torch.optim.SGD([ref_w], lr=0.1)
    ref = torch.amp.GradScaler("cpu", **settings)
    stepped_ref = []
    ref_opt.register_step_post_hook(lambda *_: stepped_ref.append(len(ref_scales)))
    w = torch.nn.Parameter(torch.zeros(16))
    opt = LowPrecisionOptimizer(torch.optim.SGD([w], lr=0.1), "fp32", grads=grads)
    ours = LossScaler(**settings)
    ref_scales, our_scales, stepped = [], [], []
    for i, g in enumerate(_stream()):
        ref_opt.zero_grad()
        ref.scale((ref_w * g).sum()).backward()  # the gradients g times the scale, in fp32
        if grads == "fp16":
            ref_w.grad = ref_w.grad.half().float()
        ref.step(ref_opt)
        ref.update()
        ref_scales.append(ref.get_scale())
        opt.zero_grad()
        ours.scale((w * g).sum()).backward()
        if ours.step(opt):
            stepped.append(i)
        ours.update()
        our_scales.append(ours.get_scale())
    assert our_scales == ref_scales
    assert stepped == stepped_ref
    assert opt.stats.skipped == 60 - len(stepped) >= 4
    assert torch.equal(w, ref_w)
    moves = [b / a for a, b in itertools.pairwise(our_scales)]
    assert 2.0 in moves and 0.5 in moves  # it grew and it backed off


# -- (c) bf16 weights: nearest stalls, stochastic rounding and Kahan close the gap -------------
def test_bf16_nearest_stalls_where_stochastic_and_kahan_follow_master_weights():
    """Least squares with weights near 3 (bf16's ulp there: 2^-6): once the steps fall below
    half an ulp, round-to-nearest stops moving (Zamirai et al.'s cancelled updates); stochastic
    rounding and Kahan's compensation keep going, as fp32 master weights do."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(256, 8, generator=gen)
    truth = torch.linspace(2.0, 4.0, 8) * torch.tensor([1.0, -1.0] * 4)
    y = x @ truth + 0.01 * torch.randn(256, generator=gen)

    def loss(update, weights="bf16"):
        w = torch.nn.Parameter(torch.zeros(8))
        opt = LowPrecisionOptimizer(torch.optim.SGD([w], lr=0.03), weights, update=update)
        for _ in range(150):
            opt.zero_grad()
            ((x @ w - y) ** 2).mean().backward()
            opt.step()
        with torch.no_grad():
            return ((x @ w - y) ** 2).mean().item(), opt.stats

    fp32, _ = loss("nearest", "fp32")
    nearest, stats = loss("nearest")
    master, _ = loss("master")
    assert nearest > 100 * master and stats.lost_share > 0.5
    for update in ("stochastic", "kahan"):
        got, _ = loss(update)
        assert got - fp32 < 0.01 * (nearest - fp32), update


# -- statistics and views ----------------------------------------------------------------------
def test_the_statistics_add_up_and_show_themselves():
    _, opt = _sgd_step(np.ones(8), np.full(8, 2.0**-12), steps=3, grads="fp16")
    s = opt.stats
    assert isinstance(s, TrainingStats) and len(s.steps) == 3
    d = s.to_dict()
    assert d["lost"] == 24 == sum(step["lost"] for step in d["steps"])
    assert d["lost_share"] == 1.0 and d["taken"] == 3 and d["skipped"] == 0
    assert d["weights"] == "float16" and d["grads"] == "float16"
    text = str(s)
    assert "24 (100.0%)" in text and "float16" in text
    assert "<pre" in s._repr_html_()


# -- bad input -----------------------------------------------------------------------------------
def _param():
    return torch.nn.Parameter(torch.ones(2))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: LowPrecisionOptimizer(torch.optim.SGD([_param()], lr=0.1), "fp99"), "fp99"),
        (lambda: LowPrecisionOptimizer(torch.optim.SGD([_param()], lr=0.1), "int8"), "float"),
        (lambda: LowPrecisionOptimizer(torch.optim.SGD([_param()], lr=0.1), "fp64"), "float32"),
        (lambda: LowPrecisionOptimizer(torch.optim.SGD([_param()], lr=0.1), "e8m0"), "sign"),
        (
            lambda: LowPrecisionOptimizer(torch.optim.SGD([_param()], lr=0.1), update="round"),
            "update rule",
        ),
        (
            lambda: LowPrecisionOptimizer(torch.optim.SGD([_param()], lr=0.1), grads="q4.4"),
            "float",
        ),
        (
            lambda: LowPrecisionOptimizer(torch.optim.SGD([_param()], lr=math.nan)),
            "learning rate",
        ),
        (lambda: LowPrecisionOptimizer(torch.optim.SGD([_param()], lr=0.1), seed=-1), "seed"),
        (lambda: LowPrecisionOptimizer([_param()]), "torch optimizer"),
        (lambda: LowPrecisionOptimizer(torch.optim.LBFGS([_param()])), "closure"),
        (
            lambda: LowPrecisionOptimizer(
                torch.optim.SGD([torch.nn.Parameter(torch.ones(2, dtype=torch.float64))], lr=0.1)
            ),
            "float32",
        ),
        (lambda: LossScaler(init_scale=0.0), "init_scale"),
        (lambda: LossScaler(growth_factor=1.0), "growth_factor"),
        (lambda: LossScaler(backoff_factor=1.5), "backoff_factor"),
        (lambda: LossScaler(growth_interval=0), "growth_interval"),
        (lambda: LossScaler().update(), "step"),
        (lambda: LossScaler().step(torch.optim.SGD([_param()], lr=0.1)), "LowPrecisionOptimizer"),
    ],
    ids=[
        "unknown-format",
        "integer-format",
        "wider-than-float32",
        "unsigned-format",
        "unknown-update",
        "fixed-point-grads",
        "nan-lr",
        "negative-seed",
        "not-an-optimizer",
        "lbfgs",
        "float64-parameter",
        "zero-scale",
        "no-growth",
        "backoff-above-1",
        "no-interval",
        "update-before-step",
        "plain-torch-optimizer",
    ],
)
def test_bad_input_is_one_clear_error(call, message):
    with pytest.raises(NumfmtError, match=message):
        call()


def test_a_learning_rate_that_turns_nan_is_refused_at_the_step():
    w = _param()
    opt = LowPrecisionOptimizer(torch.optim.SGD([w], lr=0.1), "bf16")
    opt.param_groups[0]["lr"] = math.nan
    w.grad = torch.ones(2)
    with pytest.raises(NumfmtError, match="learning rate"):
        opt.step()


def test_a_closure_is_called_once_and_its_loss_returned():
    w = _param()
    opt = LowPrecisionOptimizer(torch.optim.SGD([w], lr=2.0**-4), "bf16")
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = (w**2).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 2.0 and len(calls) == 1
    assert w.tolist() == [0.875, 0.875]  # 1 - 2^-4 x 2: a bf16 value


def test_a_second_step_before_update_is_refused():
    w = _param()
    opt = LowPrecisionOptimizer(torch.optim.SGD([w], lr=0.1), "bf16")
    scaler = LossScaler()
    w.grad = torch.ones(2)
    scaler.step(opt)
    with pytest.raises(NumfmtError, match="already"):
        scaler.step(opt)


# -- the rounding: the same bits as numfmt.arith --------------------------------------------------
def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """The same float32 bit patterns, any NaN matching any NaN."""
    nan = a.isnan()
    return torch.equal(nan, b.isnan()) and torch.equal(
        a[~nan].view(torch.int32), b[~nan].view(torch.int32)
    )


@pytest.mark.parametrize(
    "fmt", ["fp16", "bf16", "fp8_e4m3", "fp8_e5m2", "tf32", "float8_e4m3fnuz", "fp4"]
)
@pytest.mark.parametrize("rounding", ["nearest-even", "stochastic"])
def test_the_optimizers_rounding_gives_numfmt_ariths_bits(fmt, rounding):
    """The optimizer rounds through the quantization layer's round_float where the format
    allows (and through numfmt.arith elsewhere): on values across float32's range, its
    subnormals, the formats' overflow thresholds, zeros, infinities and NaN, the same bits as
    numfmt.arith.round, and the same random draws under stochastic rounding."""
    from numfmt.arith.context import Context
    from numfmt.nn.training import _round

    gen = torch.Generator().manual_seed(0)
    scales = 10.0 ** torch.randint(-45, 39, (20000,), generator=gen).float()
    special = [0.0, -0.0, 65504.0, 65519.99, 65520.0, 65536.0, 448.0, 464.0, 6.0, 7.0]
    special += [2.0**-25, 1.5 * 2.0**-25, 3.4e38, 1e-45, -1e-45, math.inf, -math.inf, math.nan]
    x = torch.cat([torch.randn(20000, generator=gen) * scales, torch.tensor(special)]).float()
    x = x[torch.isfinite(x)] if fmt == "fp4" else x  # FP4 holds neither inf nor NaN
    ours = _round(Context(fmt, rounding=rounding, seed=5), x)
    assert _same_bits(ours, Context(fmt, rounding=rounding, seed=5).round(x))
    if fmt in ("fp16", "bf16") and rounding == "nearest-even":  # torch's own cast agrees
        assert _same_bits(ours, x.to(torch.float16 if fmt == "fp16" else torch.bfloat16).float())


@pytest.mark.parametrize(
    "update, options",
    [("stochastic", {"state": "bf16"}), ("kahan", {"grads": "fp16"}), ("master", {})],
)
def test_resuming_from_a_saved_state_continues_with_the_same_bits(tmp_path, update, options):
    def build(params):
        inner = torch.optim.Adam(params, lr=1e-3)
        return LowPrecisionOptimizer(inner, "bf16", update=update, seed=3, **options)

    def train(w, opt, steps, start):
        for i in range(start, start + steps):
            w.grad = torch.sin(torch.arange(8.0) * (i + 1)) * 1e-2
            opt.step()

    w = torch.nn.Parameter(torch.linspace(-1, 1, 8))
    opt = build([w])
    train(w, opt, 5, 0)
    torch.save({"w": w.detach().clone(), "opt": opt.state_dict()}, tmp_path / "ckpt.pt")
    train(w, opt, 5, 5)  # the run that was not interrupted
    saved = torch.load(tmp_path / "ckpt.pt")
    w2 = torch.nn.Parameter(saved["w"])
    opt2 = build([w2])
    opt2.load_state_dict(saved["opt"])
    train(w2, opt2, 5, 5)
    assert torch.equal(w, w2)
    if update != "master":  # a fresh optimizer does not continue the same way
        w3 = torch.nn.Parameter(saved["w"].clone())
        train(w3, build([w3]), 5, 5)
        assert not torch.equal(w, w3)


def test_a_state_from_other_settings_is_refused():
    w = torch.nn.Parameter(torch.ones(4))
    state = LowPrecisionOptimizer(torch.optim.SGD([w], lr=0.1), "bf16").state_dict()
    other = LowPrecisionOptimizer(torch.optim.SGD([w], lr=0.1), "fp16")
    with pytest.raises(NumfmtError, match="saved with"):
        other.load_state_dict(state)
    with pytest.raises(NumfmtError, match="not a LowPrecisionOptimizer's state_dict"):
        other.load_state_dict(torch.optim.SGD([w], lr=0.1).state_dict())
