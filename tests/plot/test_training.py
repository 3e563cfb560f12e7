"""Lesson 9's figures, drawn from a hand-made result (no training)."""

import math

import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("torch")

import matplotlib

matplotlib.use("Agg")

from numfmt.errors import NumfmtError
from numfmt.lessons.training import (
    FormatRange,
    GradientHistogram,
    TrainingInFewerBits,
    TrainingRun,
)
from numfmt.plot.training import gradient_histogram, loss_curves


def _row(name, curve, scale=None):
    return TrainingRun(
        name, "bfloat16", "nearest", None, scale is not None, curve[-1][1], curve[-1][0],
        10, 0, 100, 50, 100, 0, 0, scale, curve,
    )  # fmt: skip


@pytest.fixture
def result():
    rows = (
        _row("fp32", [(2.0, 0.5), (0.5, 0.9), (0.2, 0.95)]),
        _row("bf16-nearest", [(2.0, 0.5), (0.7, 0.85), (0.4, 0.93)]),
        _row("mixed-fp16-scaled", [(2.0, 0.5), (0.5, 0.9), (0.2, 0.95)], scale=2.0**15),
    )
    hist = GradientHistogram([-30, -29, -28], [1, 10, 100], 5, 2.0**-30, 1.5 * 2.0**-28)
    ranges = (
        FormatRange("float16", 2.0**-24, 2.0**-14, 65504.0, 0.5, 1.0, 0, 6, 40),
        FormatRange("bfloat16", 2.0**-133, 2.0**-126, 3.39e38, 0.0, 0.0, 0, -103, 150),
    )
    return TrainingInFewerBits(rows, hist, ranges, {"init_scale": 2.0**16})


def test_loss_curves_draw_a_line_per_run(result):
    ax = loss_curves(result)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"fp32", "bf16-nearest", "mixed-fp16-scaled"}
    assert list(lines["bf16-nearest"].get_xdata()) == [1, 2, 3]
    assert list(lines["bf16-nearest"].get_ydata()) == [2.0, 0.7, 0.4]
    assert lines["mixed-fp16-scaled"].get_linestyle() == "--"
    assert ax.get_yscale() == "log"
    matplotlib.pyplot.close(ax.figure)
    ax = loss_curves(result, metric="accuracy")
    assert list(ax.get_lines()[0].get_ydata()) == [0.5, 0.9, 0.95]
    matplotlib.pyplot.close(ax.figure)
    with pytest.raises(NumfmtError, match="metric"):
        loss_curves(result, metric="f1")


def test_the_histogram_marks_fp16s_range_and_the_scaled_gradients(result):
    ax = gradient_histogram(result)
    from matplotlib.patches import Rectangle

    bars = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_width() == 1.0]
    assert [p.get_x() for p in bars] == [-30, -29, -28]
    assert [p.get_height() for p in bars] == pytest.approx([1 / 111, 10 / 111, 100 / 111])
    lines = {line.get_label(): line.get_xdata()[0] for line in ax.get_lines()}
    assert lines["fp16 smallest subnormal 2^-24"] == -24
    assert lines["fp16 smallest normal 2^-14"] == -14
    assert lines["fp16 largest (65504)"] == pytest.approx(math.log2(65504))
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "the same times the loss scale 2^15" in legend  # the scaled run's last scale
    assert ax.get_yscale() == "log"
    matplotlib.pyplot.close(ax.figure)
