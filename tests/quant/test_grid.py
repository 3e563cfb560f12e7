"""The grid arithmetic of the engine against the exact format layer, and scales that do not fit."""

import warnings

import numpy as np
import pytest

from numfmt.errors import NumfmtError, NumfmtWarning
from numfmt.formats import encode, get_format, round_to
from numfmt.quant import choose_qparams, dequantize, quantize, quantize_tensor
from numfmt.quant._xp import namespace
from numfmt.quant.grid import float_codes, round_float

xp = namespace(np.zeros(1))
FORMATS = [
    "float32",
    "float16",
    "bfloat16",
    "float8_e4m3fn",
    "float8_e5m2",
    "float8_e4m3fnuz",
    "float6_e3m2fn",
    "float4_e2m1fn",
    "e3m3",
    "e5m6",
]


def _values():
    rng = np.random.default_rng(3)
    v = rng.standard_normal(20000) * np.exp(rng.uniform(-30, 30, 20000))
    ties = round_to(rng.standard_normal(2000), "float8_e4m3fn") * (1 + 2.0**-4)  # e4m3 midpoints
    f32 = rng.standard_normal(2000).astype(np.float32).astype(np.float64)
    f32_ties = f32 * (1 + 2.0**-24)  # float32 midpoints, and values either side of them
    f32_edges = np.float64(np.finfo(np.float32).max) * np.array([1, 1 + 2.0**-25, 1 + 2.0**-24])
    tiny = np.float64(np.finfo(np.float32).smallest_subnormal) * np.array([0.5, 1.5, 2.5, 0.25])
    return np.concatenate(
        [
            v,
            ties,
            f32_ties,
            np.nextafter(f32_ties, 0),
            np.nextafter(f32_ties, 9),
            f32_edges,
            -f32_edges,
            tiny,
            -tiny,
            [0.0, -0.0, 1e-320, -1e-320, 7e38, -7e38],
        ]
    )


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("mode", ["nearest-even", "up", "down"])
def test_round_float_is_the_exact_encoder(name, mode):
    fmt = get_format(name)
    v = _values()
    ours, over = round_float(xp, v, fmt, mode)
    exact = round_to(v, fmt, mode, "saturate")
    assert np.array_equal(ours, exact)
    top = float(fmt.max_value)
    assert not over[np.abs(v) <= top].any()  # saturated only what lies beyond the largest
    assert over[np.abs(v) >= 2 * top].all()  # and everything far beyond it
    assert np.array_equal(np.signbit(ours), np.signbit(v))
    codes = float_codes(xp, ours, fmt)
    assert np.array_equal(codes, encode(ours, fmt, overflow="saturate"))


@pytest.mark.parametrize("mode", ["nearest-even", "up", "down"])
def test_float32_by_cast_is_float32_by_binades(mode):
    from numfmt.quant.grid import _round_by_binades, _round_by_cast

    fmt, v = get_format("float32"), _values()
    fast, fast_over = _round_by_cast(xp, v, fmt, mode)
    slow, slow_over = _round_by_binades(xp, v, fmt, mode)
    assert np.array_equal(fast, slow) and np.array_equal(np.signbit(fast), np.signbit(slow))
    assert np.array_equal(fast_over, slow_over)


def test_round_float_on_torch_is_the_same():
    torch = pytest.importorskip("torch")
    v = _values()
    for name in ("float32", "bfloat16", "float8_e4m3fn", "float4_e2m1fn"):
        fmt = get_format(name)
        for mode in ("nearest-even", "up", "down"):
            ours, over = round_float(xp, v, fmt, mode)
            theirs, their_over = round_float(
                namespace(torch.zeros(1)), torch.from_numpy(v), fmt, mode
            )
            assert np.array_equal(ours, theirs.numpy()), (name, mode)
            assert np.array_equal(over, their_over.numpy()), (name, mode)


def test_a_scale_beyond_its_format_is_said_and_its_clipping_counted():
    x = np.array([1e8, -3.0, 0.5])
    with pytest.warns(NumfmtWarning, match="1 of 1 scales do not fit float16"):
        qp = choose_qparams(x, "int8/scale:fp16")
    assert qp.saturated == 1 and float(qp.scale) == 65504.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumfmtWarning)
        qt = quantize_tensor(x, "int8/scale:fp16")
    report = qt.report(x)
    assert report.clipped_fraction == pytest.approx(1 / 3)  # 1e8 lies far beyond the grid
    assert qt.to_dict()["qparams"]["saturated_scales"] == 1
    with pytest.warns(NumfmtWarning, match="float32"):
        choose_qparams(np.array([1e300, 1.0]), "int8")


def test_scales_round_up_so_minmax_never_clips():
    rng = np.random.default_rng(0)
    for spec in (
        "int8/channel",
        "int4/asym/group:16",
        "int4/min/group:16/scale:bf16",
        "fp8_e4m3/channel/scale:fp16",
    ):
        x = rng.standard_normal((32, 64)) * 10
        qt = quantize_tensor(x, spec)
        assert qt.report(x).clipped_fraction == 0.0, spec


def test_codes_outside_the_grid_are_refused_with_the_culprit():
    x = np.random.default_rng(0).standard_normal((2, 64))
    nf4 = choose_qparams(x, "nf4")
    codes = quantize(x, nf4)
    codes[1, 3] = 200
    with pytest.raises(NumfmtError, match=r"1 of 128 codes lie outside the grid of nf4 .* 200"):
        dequantize(codes, nf4)
    fp8 = choose_qparams(x, "fp8_e4m3")
    bad = quantize(x, fp8)
    bad[0, 0] = 0x7F  # NaN in e4m3fn: quantize never gives it
    with pytest.raises(NumfmtError, match="finite values"):
        dequantize(bad, fp8)
    int4 = choose_qparams(x, "int4")
    with pytest.raises(NumfmtError, match=r"-7 .. 7"):
        dequantize(np.full((2, 64), -8, np.int8), int4)
    with pytest.raises(NumfmtError, match="integers"):
        dequantize(np.zeros((2, 64)), int4)


def test_integer_grids_reach_32_bits():
    x = np.random.default_rng(1).standard_normal(1000) * 1e3
    qt = quantize_tensor(x, "int32")
    # the largest code is 2^31 - 1 but for the float32 scale's rounding up (2^-24 relative)
    assert qt.codes.dtype == np.int32 and 2**31 - 2**8 < int(np.abs(qt.codes).max()) < 2**31
    assert np.abs(qt.dequantize() - x).max() <= float(qt.qparams.scale) / 2
    with pytest.raises(NumfmtError, match="2 to 32"):
        quantize_tensor(x, "int33")


def test_omitted_infinities_leave_no_nan_in_the_report():
    x = np.array([1.5, np.inf, -2.0, np.nan, 0.5])
    qt = quantize_tensor(x, "int8", nan_policy="omit")
    assert qt.codes.tolist() == [95, 127, -127, 0, 32]  # inf clips, NaN is zero
    r = qt.report(x, nan_policy="omit")
    assert r.n == 3 and all(np.isfinite([r.mse, r.sqnr_db, r.cosine, r.clipped_fraction]))
    with pytest.raises(NumfmtError, match="NaN or inf"):
        qt.report(x)
