"""Error reports: every metric against its definition, clipping against a worked case."""

import math

import numpy as np
import pytest

from numfmt.errors import NumfmtError
from numfmt.quant import (
    Grouping,
    PerAxis,
    choose_qparams,
    compare_schemes,
    dequantize,
    error_report,
    quantize,
    quantize_tensor,
)


def test_metrics_follow_their_definitions():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(1000)
    xq = x + rng.standard_normal(1000) * 0.01
    r = error_report(x, xq)
    e = xq - x
    assert r.mse == pytest.approx(np.mean(e**2))
    assert r.rmse == pytest.approx(np.sqrt(np.mean(e**2)))
    assert r.mae == pytest.approx(np.mean(np.abs(e)))
    assert r.max_abs_error == pytest.approx(np.abs(e).max())
    assert r.sqnr_db == pytest.approx(10 * np.log10(np.sum(x**2) / np.sum(e**2)))
    assert r.cosine == pytest.approx(x @ xq / np.linalg.norm(x) / np.linalg.norm(xq))


def test_clipping_worked_by_hand():
    # int2 symmetric, range chosen on [-1, 1]: codes -1, 0, 1 and step 1; 3.0 lands on 1
    x = np.array([-1.0, -0.4, 0.0, 0.6, 3.0])
    qp = choose_qparams(np.array([-1.0, 0.0, 0.0, 0.0, 1.0]), "int2")
    xq = dequantize(quantize(x, qp), qp)
    assert xq.tolist() == pytest.approx([-1.0, 0.0, 0.0, 1.0, 1.0])
    r = error_report(x, xq, qparams=qp)
    assert r.clipped_fraction == pytest.approx(1 / 5)
    errors = (xq - x) ** 2
    assert r.clip_share == pytest.approx(errors[4] / errors.sum())
    assert r.rounding_share == pytest.approx(1 - r.clip_share)
    # read off xq alone, the clipping is the same
    assert error_report(x, xq).clipped_fraction == r.clipped_fraction


def test_per_group_figures():
    x = np.random.default_rng(1).standard_normal((6, 100))
    x[2] *= 100
    qt = quantize_tensor(x, "int4/channel")
    r = qt.report(x)
    assert r.per_group["sqnr_db"].shape == (6,)
    assert r.per_group["mse"][2] > 1000 * r.per_group["mse"][0]
    g = error_report(x, qt.dequantize(), grouping=Grouping(x.shape, PerAxis(0)))
    assert np.allclose(g.per_group["mse"], r.per_group["mse"])


def test_sound_answers_at_the_edges():
    r = error_report(np.zeros(5), np.zeros(5))
    assert (r.mse, r.sqnr_db, r.cosine, r.clipped_fraction) == (0.0, math.inf, 1.0, 0.0)
    r = error_report(np.zeros((0, 3)), np.zeros((0, 3)))
    assert r.n == 0 and r.mse == 0.0
    assert error_report([1.0, 2.0], [1.0, 2.0]).sqnr_db == math.inf
    assert '"sqnr_db": null' in error_report([1.0], [1.0]).to_json()


def test_bad_reports():
    with pytest.raises(NumfmtError, match="shape"):
        error_report(np.zeros(3), np.zeros(4))
    with pytest.raises(NumfmtError, match="finite"):
        error_report([np.nan], [0.0])


def test_compare_schemes_table():
    x = np.random.default_rng(2).standard_normal((32, 128))
    table = compare_schemes(x, ["int8", "int4", "int4/group:32", "nf4"])
    assert [r.scheme for r in table.rows][:2] == [
        "int8",
        "int4",
    ]
    assert table.best("sqnr_db").scheme.startswith("int8")
    assert table.rows[2].sqnr_db > table.rows[1].sqnr_db  # groups beat one scale
    assert len(table.to_dict()["schemes"]) == 4
    with pytest.raises(NumfmtError):
        compare_schemes(x, [])


FUSED = [
    "int8/channel",
    "int4/asym/group:32",
    "int4/min/group:32/scale:fp16",
    "int4/group:48",  # a ragged last group: two blocks
    "q4_1",
    "q4_0",
    "fp8_e4m3/group:32/scale:bf16",
    "mxfp4",
    "nvfp4",
    "nf4",
    "int8",
]


@pytest.mark.parametrize("spec", FUSED)
@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_the_one_pass_report_from_codes_is_the_decoded_report(spec, library):
    """QuantizedTensor.report decodes each code on the fly in one pass (the host kernel): the
    same figures as comparing with the dequantized tensor, to the order of addition."""
    from numfmt.quant import _kernels
    from numfmt.quant.report import codes_error_report

    rng = np.random.default_rng(1)
    x = (rng.standard_normal((256, 192)) * np.exp(rng.standard_normal((256, 1)))).astype(np.float32)
    x[3, 5] = 40.0  # an outlier the per-tensor grid clips
    if library == "torch":
        torch = pytest.importorskip("torch")
        x = torch.from_numpy(x)
    qt = quantize_tensor(x, spec)
    fused = codes_error_report(x, qt.codes, qt.qparams)
    if not _kernels._format_kernels.available():
        assert fused is None
        return
    assert fused is not None
    slow = error_report(x, qt.dequantize(), qparams=qt.qparams)
    for field in ("mse", "mae", "max_abs_error", "sqnr_db", "cosine", "clip_share"):
        assert getattr(fused, field) == pytest.approx(getattr(slow, field), rel=1e-12), field
    assert (fused.n, fused.clipped_fraction) == (slow.n, slow.clipped_fraction)
    for key, values in slow.per_group.items():
        assert np.allclose(fused.per_group[key], values, rtol=1e-12, atol=0), key


def test_the_one_pass_report_leaves_refusals_to_the_general_path():
    from numfmt.quant.report import codes_error_report

    x = np.linspace(-1, 1, 1 << 16).astype(np.float32)
    qt = quantize_tensor(x, "fp8_e4m3")
    codes = np.array(qt.codes)
    codes[7] = 0x7F  # e4m3's NaN: no value quantize gives
    assert codes_error_report(x, codes, qt.qparams) is None
    with pytest.raises(NumfmtError, match="outside"):
        dequantize(codes, qt.qparams)
    y = x.copy()
    y[3] = np.nan
    assert codes_error_report(y, qt.codes, qt.qparams) is None  # nan_policy="error" refuses
    omitted = codes_error_report(y, qt.codes, qt.qparams, nan_policy="omit")
    assert omitted is not None and omitted.n == x.size - 1
    assert omitted.mse == pytest.approx(
        error_report(y, qt.dequantize(), qparams=qt.qparams, nan_policy="omit").mse, rel=1e-12
    )


# -- values whose squares overflow float64 --------------------------------------------------------
@pytest.mark.parametrize(
    ("x", "xq"),
    [
        ([1e300, 1.0], [0.0, 1.0]),  # x's square
        ([1.0, 2.0], [1e300, 0.0]),  # xq's square
        ([1e200, -1e200], [-1e200, 1e200]),  # the error's square
        ([1e308, -1e308], [-1e308, 1e308]),  # the error itself
        ([1e153] * 1000, [1e153] * 1000),  # each square fits, their sum does not
    ],
    ids=["x", "xq", "error", "difference", "sum"],
)
def test_values_too_large_for_the_sums_are_refused_not_reported_as_inf(x, xq):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy RuntimeWarning on the way
        with pytest.raises(NumfmtError, match=r"too large to measure.*1e154"):
            error_report(x, xq)


def test_quantized_tensors_too_large_to_measure_are_refused_on_every_path():
    import warnings

    x = np.array([1e300, 1.0] * 64)
    for spec in ("int8/scale:float64", "nf4", "int4/asym/group:32/scale:float64", "mxfp4"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # saturated scales: not what is tested here
            qt = quantize_tensor(x, spec)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(NumfmtError, match="too large to measure"):
                qt.report(x)
    r = error_report([1e154, -1.0], [1e154, 0.0])  # the largest that still sums finitely
    assert math.isfinite(r.sqnr_db) and r.mse == 0.5
