"""The numbers behind the plots."""

import numpy as np
import pytest

from numfmt.errors import NumfmtError
from numfmt.quant import analysis
from numfmt.quant.synthetic import DISTRIBUTIONS, synthetic


def test_each_bit_buys_about_6_db():
    x = synthetic("uniform", (64, 256))
    c = analysis.error_vs_bits(x, ["int{bits}"], range(4, 9))
    slope = np.polyfit(*c.series["intN"], 1)[0]
    assert 5.5 < slope < 6.5


def test_clipping_curve_marks_every_method():
    x = synthetic("outliers", (1, 20000), seed=3)
    c = analysis.clipping_curve(x, "int4", ratios=50)
    assert set(c.marks) == set(analysis.DEFAULT_METHODS)
    assert c.marks["mse"][1] <= c.marks["minmax"][1]
    assert c.marks["minmax"][0] == pytest.approx(1.0)
    r, mse = c.series["MSE at each clip ratio"]
    assert r[-1] == 1.0 and mse[-1] == pytest.approx(c.marks["minmax"][1])


def test_grid_view_levels_and_zero_point():
    x = synthetic("normal", (1, 5000))
    g = analysis.grid_view(x, "int4")
    assert len(g.levels) == 15 and g.zero_point is None
    g = analysis.grid_view(x, "int4/asym")
    assert len(g.levels) == 16 and g.zero_point is not None
    assert np.min(np.abs(g.levels)) == 0.0  # zero is a level
    g = analysis.grid_view(synthetic("normal", (8, 64)), "int4/channel", group=3)
    assert g.group == 3 and g.counts.sum() == 64
    with pytest.raises(NumfmtError, match="does not exist"):
        analysis.grid_view(synthetic("normal", (8, 64)), "int4/channel", group=8)


def test_format_ranges_and_relative_error():
    rows = {r["format"]: r for r in analysis.format_ranges().rows}
    assert rows["float4_e2m1fn"]["log2_max"] == pytest.approx(np.log2(6))
    assert rows["bfloat16"]["log2_max"] > rows["float16"]["log2_max"]
    assert rows["int8"]["precision_bits"] == 7
    c = analysis.relative_error("fp8_e4m3", binades=3)
    rel = c.series["|round(x) - x| / x"][1]
    envelope = c.series["half a ULP / x"][1]
    assert np.all(rel <= envelope * (1 + 1e-12)) and rel.max() > 0.9 * 2**-4
    assert envelope.max() == 2**-4 and envelope.min() > 2**-5


def test_synthetic_distributions():
    for name in DISTRIBUTIONS:
        x = synthetic(name, 20000, seed=1)
        assert x.dtype == np.float32 and 0.8 < x.std() < 1.6
    with pytest.raises(NumfmtError, match="unknown distribution"):
        synthetic("cauchy")


def test_the_grid_view_counts_clipping_as_the_report_does():
    from numfmt.quant import quantize_tensor
    from numfmt.quant.analysis import grid_view

    x = np.random.default_rng(2).laplace(size=50_000)
    view = grid_view(x, "int4/percentile:99")
    report = quantize_tensor(x, "int4/percentile:99").report(x)
    assert view.clipped_below + view.clipped_above == round(report.clipped_fraction * x.size)
    # a value within half a step of the last level is not clipped in either
    assert view.clip_above > view.levels[-1] and view.clip_below < view.levels[0]
