"""The trio against torch's quantized ops and hand-worked cases from the lesson."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from numfmt.errors import NumfmtError
from numfmt.quant import (
    choose_qparams,
    dequantize,
    fake_quantize,
    parse_scheme,
    quantize,
    quantize_tensor,
    scheme,
)


def test_lesson_asymmetric_by_hand():
    # beta = min = -1.5, alpha = max = 3.0; 256 codes: s = 4.5 / 255, z = round(1.5 / s) = 85
    x = np.array([-1.5, -0.5, 0.0, 0.5, 3.0])
    qp = choose_qparams(x, "int8/asym")
    assert qp.scale == pytest.approx(4.5 / 255, rel=1e-7) and int(qp.zero_point) == 85
    # -0.5 / s = -28.33 -> -28, +85 = 57;  0.5 / s = 28.33 -> 28, +85 = 113
    assert quantize(x, qp).tolist() == [0, 57, 85, 113, 255]
    back = dequantize(quantize(x, qp), qp)
    assert back[2] == 0.0  # zero is exact
    assert np.abs(back - x).max() <= float(qp.scale) / 2


def test_lesson_symmetric_by_hand():
    # alpha = max |x| = 3.0, codes -127 .. 127, zero in the middle: s = 3 / 127
    x = np.array([-1.2, -0.5, 0.0, 0.4, 3.0])
    qp = choose_qparams(x, "int8")
    assert qp.scale == pytest.approx(3 / 127, rel=1e-7) and qp.zero_point is None
    # -1.2 * 127/3 = -50.8 -> -51;  -0.5 -> -21.17 -> -21;  0.4 -> 16.93 -> 17
    assert quantize(x, qp).tolist() == [-51, -21, 0, 17, 127]


def assert_same_codes_but_torchs_float32_ties(ours, theirs, x, scale, zero=0):
    """torch rounds x * (1/scale) computed in float32, so a quotient within a float32 rounding
    of a tie may go the other way; numfmt rounds the float64 quotient. Elsewhere: equal."""
    ours, theirs = ours.astype(np.int64), theirs.astype(np.int64)
    differ = ours != theirs
    exact = np.asarray(x, dtype=np.float64) / scale
    near_tie = np.abs(np.abs(exact - np.floor(exact)) - 0.5) < 1e-5
    assert np.all(near_tie[differ]) and np.all(np.abs(ours - theirs)[differ] == 1)
    expected = np.rint(exact) + zero
    assert np.all(ours[differ] == expected[differ])
    assert differ.mean() < 1e-3


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


# torch 2.10+ deprecates its quantized tensors; they remain the reference we check against
torch_quantized = pytest.mark.filterwarnings("ignore:.*quantized tensor creation:UserWarning")


@torch_quantized
@pytest.mark.parametrize("spec", ["int8", "int8/full", "int8/asym"])
def test_codes_match_torch_quantize_per_tensor(torch, spec):
    x = np.random.default_rng(0).standard_normal((64, 257)).astype(np.float32)
    qp = choose_qparams(x, spec)
    ours = quantize(x, qp)
    asym = qp.zero_point is not None
    t = torch.quantize_per_tensor(
        torch.from_numpy(x),
        float(qp.scale),
        int(qp.zero_point) if asym else 0,
        torch.quint8 if asym else torch.qint8,
    )
    theirs = t.int_repr().numpy()
    if not asym and qp.scheme.restricted:
        theirs = np.clip(theirs, -127, 127)  # torch's qint8 reaches -128; ours stops at -127
    zero = int(qp.zero_point) if asym else 0
    assert_same_codes_but_torchs_float32_ties(ours, theirs, x, float(qp.scale), zero)
    same = ours.astype(np.int64) == theirs.astype(np.int64)
    assert np.allclose(dequantize(ours, qp)[same], t.dequantize().numpy()[same], rtol=1e-6, atol=0)


@torch_quantized
@pytest.mark.parametrize(("spec", "axis"), [("int8/channel:0", 0), ("int8/asym/channel:1", 1)])
def test_codes_match_torch_quantize_per_channel(torch, spec, axis):
    x = np.random.default_rng(1).standard_normal((48, 96)).astype(np.float32)
    x[3] *= 50  # one loud channel
    qp = choose_qparams(x, spec)
    asym = qp.zero_point is not None
    t = torch.quantize_per_channel(
        torch.from_numpy(x),
        torch.from_numpy(qp.scale),
        torch.from_numpy(qp.zero_point if asym else np.zeros_like(qp.scale, dtype=np.int64)),
        axis,
        torch.quint8 if asym else torch.qint8,
    )
    scale = qp.grouping.expand(qp.scale)
    zero = qp.grouping.expand(qp.zero_point) if asym else 0
    assert_same_codes_but_torchs_float32_ties(quantize(x, qp), t.int_repr().numpy(), x, scale, zero)


@torch_quantized
def test_qparams_match_torch_minmax_observers(torch):
    from torch.ao.quantization import MinMaxObserver, PerChannelMinMaxObserver

    x = np.random.default_rng(2).standard_normal((16, 40)).astype(np.float32)
    obs = MinMaxObserver(dtype=torch.quint8, qscheme=torch.per_tensor_affine)
    obs(torch.from_numpy(x))
    scale, zero = obs.calculate_qparams()
    qp = choose_qparams(x, "int8/asym")
    assert float(qp.scale) == pytest.approx(float(scale), rel=1e-6)
    assert int(qp.zero_point) == int(zero)
    obs = PerChannelMinMaxObserver(
        ch_axis=0, dtype=torch.qint8, qscheme=torch.per_channel_symmetric
    )
    obs(torch.from_numpy(x))
    scale, _ = obs.calculate_qparams()
    qp = choose_qparams(x, "int8/full/channel:0")  # torch's symmetric range is -128 .. 127
    assert np.allclose(qp.scale, scale.numpy(), rtol=1e-6)


def test_ragged_group_gets_its_own_scale():
    x = np.random.default_rng(3).standard_normal((2, 576))
    x[:, 512:] *= 0.01  # the short last group is quiet: a shared scale would crush it
    qp = choose_qparams(x, "int4/group:128")
    assert qp.scale.shape == (2, 5)
    expected = np.abs(x[:, 512:]).max(axis=1) / 7
    assert np.allclose(qp.scale[:, 4], expected, rtol=1e-6)
    back = dequantize(quantize(x, qp), qp)
    assert np.abs(back[:, 512:] - x[:, 512:]).max() <= qp.scale[:, 4].max() / 2 + 1e-12


@pytest.mark.parametrize("spec", ["int8", "int4/asym/channel", "fp8_e4m3/group:16", "nf4", "mxfp4"])
def test_edge_cases_get_sound_answers(spec):
    for x in [np.zeros((4, 64)), np.full((4, 64), 2.5), np.array([[7.0]]), np.zeros((0, 64))]:
        qp = choose_qparams(x, spec)
        back = dequantize(quantize(x, qp), qp)
        assert back.shape == x.shape and np.isfinite(back).all()
        if x.size and np.all(x == 0):
            assert np.all(back == 0)
        r = quantize_tensor(x, spec).report(x)
        assert not np.isnan([r.mse, r.sqnr_db, r.cosine, r.clipped_fraction]).any()


def test_constant_and_single_values_come_back_up_to_the_scales_rounding():
    for x in [np.full((3, 8), -2.5), np.array([[1.25]])]:
        qp = choose_qparams(x, "int8")
        assert quantize(x, qp).tolist() == np.sign(x).astype(int).__mul__(127).tolist()
        back = dequantize(quantize(x, qp), qp)
        assert np.all(np.abs(back - x) <= np.abs(x) * 2.0**-23)  # the float32 scale's rounding
        wide = choose_qparams(x, "int8/scale:float64")
        assert np.allclose(dequantize(quantize(x, wide), wide), x, rtol=2.0**-52, atol=0)


def test_all_zero_tensor_has_scale_zero_and_perfect_report():
    x = np.zeros((8, 8))
    qt = quantize_tensor(x, "int4/asym")
    assert np.all(qt.qparams.scale == 0) and np.all(qt.dequantize() == 0)
    r = qt.report(x)
    assert (r.mse, r.sqnr_db, r.cosine) == (0.0, float("inf"), 1.0)


def test_nan_and_inf_are_refused_or_omitted():
    x = np.array([1.1, np.nan, -2.0, np.inf])
    with pytest.raises(NumfmtError, match="NaN or infinite"):
        choose_qparams(x, "int8")
    qp = choose_qparams(x, "int8", nan_policy="omit")
    assert qp.scale == pytest.approx(2 / 127, rel=1e-6)
    assert quantize(x, qp).tolist() == [70, 0, -127, 127]  # 1.1 * 127 / 2 = 69.85


def test_per_tensor_qparams_serve_any_shape_the_others_refuse():
    qp = choose_qparams(np.array([-2.0, 2.0]), "int8")  # a range observed on one batch
    assert quantize(np.full((3, 2), 1.5), qp).tolist() == [[95, 95]] * 3  # 1.5 x 127 / 2
    qp = choose_qparams(np.ones((2, 3)), "int8/channel")
    with pytest.raises(NumfmtError, match="shape"):
        quantize(np.ones((3, 2)), qp)


def test_torch_tensors_come_back_as_torch_tensors(torch):
    t = torch.randn(8, 32, dtype=torch.bfloat16)
    qp = choose_qparams(t, "int4/group:16")
    codes = quantize(t, qp)
    assert (
        isinstance(codes, torch.Tensor) and codes.dtype == torch.int8 and codes.device == t.device
    )
    out = fake_quantize(t, "int4/group:16")
    assert isinstance(out, torch.Tensor) and out.dtype == torch.bfloat16 and out.shape == t.shape
    assert isinstance(dequantize(codes, qp), torch.Tensor)


def test_stochastic_rounding_is_seeded_and_unbiased():
    # a range of [-1, 1] on int2 gives the step s = 1 (codes -1, 0, 1); 0.3 lies 30% of the
    # way from 0 to 1, so about 30% of the codes are 1
    x = np.full(200_000, 0.3)
    x[:2] = [-1.0, 1.0]
    qp = choose_qparams(x, "int2/stochastic")
    assert float(qp.scale) == pytest.approx(1.0)
    a = quantize(x, qp, seed=1)
    assert np.array_equal(a, quantize(x, qp, seed=1))
    assert not np.array_equal(a, quantize(x, qp, seed=2))
    assert abs(dequantize(a, qp)[2:].mean() - 0.3) < 0.005  # 4.6 sigma for 200,000 draws


# -- properties -----------------------------------------------------------------------------------
tensors = hnp.arrays(
    np.float64,
    hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=40),
    elements=st.floats(-1e3, 1e3, allow_nan=False, width=64),
)


@settings(max_examples=120, deadline=None)
@given(
    x=tensors,
    spec=st.sampled_from(
        ["int8", "int4/asym", "int3/channel", "int8/full/group:7", "int5/asym/group:16:0"]
    ),
)
def test_dequantized_values_are_within_half_a_step_where_not_clipped(x, spec):
    qp = choose_qparams(x, spec)
    back = dequantize(quantize(x, qp), qp)
    step = qp.grouping.expand(qp.effective_scale)
    s = qp.scheme
    z = 0 if qp.zero_point is None else qp.grouping.expand(qp.zero_point)
    inside = (x >= (s.qmin - z) * step) & (x <= (s.qmax - z) * step)
    assert np.all(np.abs(back - x)[inside] <= step[inside] / 2 * (1 + 1e-9) + 1e-300)


@settings(max_examples=60, deadline=None)
@given(x=tensors, spec=st.sampled_from(["int4", "int3/asym", "int4/channel", "int8/group:8"]))
def test_mse_calibration_is_never_worse_than_minmax(x, spec):
    base = parse_scheme(spec)
    results = []
    for method in ("minmax", "mse"):
        s = base.with_(method=method)
        qp = choose_qparams(x, s)
        results.append(np.square(dequantize(quantize(x, qp), qp) - x))
    g = choose_qparams(x, base).grouping
    per_group = [g.join_params([b.mean(axis=1) for b in g.blocks(r)]) for r in results]
    assert np.all(per_group[1] <= per_group[0] * (1 + 1e-12) + 1e-300)


def test_numba_and_numpy_paths_give_the_same_codes(monkeypatch):
    from numfmt.formats import _kernels as fk
    from numfmt.quant import _kernels

    if not fk.available():
        pytest.skip("numba is not installed")
    x = np.random.default_rng(4).standard_normal((256, 512)).astype(np.float32)
    for spec in [
        "int8/channel",
        "int4/asym/group:128",
        "int8/full",
        "int8/channel/mse",
        "int4/asym/group:128/mse:30",
    ]:
        s = parse_scheme(spec)
        fast = quantize_tensor(x, s)
        fake_fast = fake_quantize(x, s)
        monkeypatch.setattr(_kernels, "MIN_SIZE", 10**12)
        monkeypatch.setattr(_kernels, "LOADED_TAKES_SMALL", False)
        slow = quantize_tensor(x, s)
        fake_slow = fake_quantize(x, s)
        monkeypatch.setattr(_kernels, "MIN_SIZE", 1 << 15)
        monkeypatch.setattr(_kernels, "LOADED_TAKES_SMALL", True)
        # the searches sum in different orders; equal losses within 1e-9 pick the same ratio
        assert np.array_equal(fast.qparams.scale, slow.qparams.scale), spec
        assert np.array_equal(fast.codes, slow.codes), spec
        assert fake_fast.dtype == fake_slow.dtype == np.float32, spec
        assert np.array_equal(fake_fast.view(np.uint32), fake_slow.view(np.uint32)), spec


def test_scheme_objects_and_strings_agree():
    x = np.random.default_rng(5).standard_normal((8, 64))
    a = quantize_tensor(x, scheme("int4", mapping="asym", granularity="group:32", method="mse"))
    b = quantize_tensor(x, "int4/asym/group:32/mse")
    assert np.array_equal(a.codes, b.codes)


def _same_array(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if type(a) is not type(b) or a.dtype != b.dtype or tuple(a.shape) != tuple(b.shape):
        return False
    return bool((a == b).all()) if hasattr(a, "all") else bool(np.array_equal(a, b))


@pytest.mark.parametrize(
    "spec",
    ["int8/channel", "int8/asym/channel", "uint8/channel", "int4/group:32", "int8", "int6/token"],
)
@pytest.mark.parametrize("library", ["numpy32", "numpy64", "torch32"])
def test_the_one_pass_quantize_tensor_is_choose_qparams_then_quantize(spec, library, monkeypatch):
    """quantize_tensor's compiled path (choose_and_quantize) gives what the general path gives:
    codes, scales, zero points and ranges, with their dtypes and libraries."""
    pytest.importorskip("numba")
    from numfmt.quant import qparams as qparams_module
    from numfmt.quant import quantize_tensor, tensor

    rng = np.random.default_rng(7)
    x = rng.standard_normal((48, 100)) * rng.uniform(0.01, 100, (48, 1))
    x[3] = np.abs(x[3])  # a row of one sign
    x[5] = 0.0  # a dead scale
    if library == "numpy32":
        x = x.astype(np.float32)
    elif library == "torch32":
        torch = pytest.importorskip("torch")
        x = torch.from_numpy(x.astype(np.float32))
    fused = qparams_module.choose_and_quantize(x, qparams_module.as_scheme(spec))
    assert fused is not None  # the compiled path takes it
    fast = quantize_tensor(x, spec)
    monkeypatch.setattr(tensor, "choose_and_quantize", lambda x, s: None)
    slow = quantize_tensor(x, spec)
    assert _same_array(fast.codes, slow.codes)
    for field in ("scale", "zero_point", "tensor_scale", "lo", "hi", "minimum"):
        assert _same_array(getattr(fast.qparams, field), getattr(slow.qparams, field)), field
    assert fast.qparams.saturated == slow.qparams.saturated == 0
    assert fast.qparams.grouping == slow.qparams.grouping


def test_the_one_pass_quantize_leaves_what_it_cannot_take_to_the_general_path():
    pytest.importorskip("numba")
    from numfmt.quant import quantize_tensor
    from numfmt.quant.qparams import as_scheme, choose_and_quantize

    x = np.ones((4, 64))
    x[1, 3] = np.nan
    assert choose_and_quantize(x, as_scheme("int8/channel")) is None
    with pytest.raises(NumfmtError, match="NaN"):
        quantize_tensor(x, "int8/channel")
    omitted = quantize_tensor(x, "int8/channel", nan_policy="omit")
    assert omitted.codes[1, 3] == 0
    for spec in ("int8/channel/mse", "fp8_e4m3/channel", "q4_1", "nf4"):
        assert choose_and_quantize(np.ones((4, 64)), as_scheme(spec)) is None
