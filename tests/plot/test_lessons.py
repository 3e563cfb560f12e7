"""The lessons' figures, drawn from a hand-made result (no training)."""

import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("torch")

import matplotlib

matplotlib.use("Agg")

from numfmt.errors import NumfmtError
from numfmt.lessons.qat import AccuracyRow, PTQvsQAT
from numfmt.plot.lessons import accuracy_vs_bits, training_curves

ACC = {
    ("ptq-minmax", 8): 0.97,
    ("ptq-minmax", 2): 0.35,
    ("qat", 8): 0.96,
    ("qat", 2): 0.90,
}


@pytest.fixture
def result():
    rows = [AccuracyRow("float", None, 0.975)]
    rows += [AccuracyRow(m, b, a) for (m, b), a in ACC.items()]
    curves = {
        "float": [(2.0, 0.5), (0.5, 0.9), (0.1, 0.975)],
        "qat int8": [(0.1, 0.96), (0.1, 0.96)],
        "qat int2": [(1.0, 0.6), (0.4, 0.9)],
    }
    return PTQvsQAT(tuple(rows), curves, {"test": 450})


def test_accuracy_against_bits_draws_a_line_per_method(result):
    ax = accuracy_vs_bits(result)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"float32 (97.5%)", "ptq-minmax", "qat"}
    assert list(lines["ptq-minmax"].get_ydata()) == [0.97, 0.35]  # int8 first, int2 last
    assert [t.get_text() for t in ax.get_xticklabels()] == ["int8", "int2"]
    assert lines["float32 (97.5%)"].get_ydata()[0] == 0.975
    assert ax.get_ylim()[0] == pytest.approx(0.30)
    matplotlib.pyplot.close(ax.figure)


def test_training_curves_continue_from_the_float_training(result):
    ax = training_curves(result)
    lines = {
        line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")
    }
    assert list(lines["float"].get_xdata()) == [1, 2, 3]
    assert list(lines["qat int2"].get_xdata()) == [4, 5]
    assert list(lines["qat int2"].get_ydata()) == [0.6, 0.9]
    assert lines["qat int2"].get_color() != lines["qat int8"].get_color()  # a colour per width
    matplotlib.pyplot.close(ax.figure)
    ax = training_curves(result, metric="loss")
    assert ax.get_yscale() == "log"
    matplotlib.pyplot.close(ax.figure)
    with pytest.raises(NumfmtError, match="metric"):
        training_curves(result, metric="f1")
