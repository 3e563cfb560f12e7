"""The model layer's figures: what each draws, from tiny models."""

import numpy as np
import pytest

pytest.importorskip("matplotlib")
torch = pytest.importorskip("torch")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

from numfmt.eval.compare import ModelComparison, RecipeRow  # noqa: E402
from numfmt.nn import quantize_model  # noqa: E402
from numfmt.nn.layers import layer_weights  # noqa: E402
from numfmt.plot.models import pareto, sqnr_by_layer, weight_histogram  # noqa: E402


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(128, 64), torch.nn.ReLU(), torch.nn.Linear(64, 8))


def test_the_histogram_draws_a_step_per_level_of_a_per_tensor_grid(net):
    models = {"original": net}
    for recipe in ("int4", "int4/group:16"):
        models[recipe] = quantize_model(net, recipe)[0]
    weights = layer_weights(models, "0")
    ax = weight_histogram(weights)
    labels = ax.get_legend_handles_labels()[1]
    levels = np.unique(weights["int4"].numpy()).size
    assert labels == ["original", f"int4 ({levels} levels)", "int4/group:16"]
    (step,) = ax.get_lines()  # the per-tensor grid as steps; the grouped one as a histogram
    assert len(step.get_xdata()) == levels
    # densities: the steps integrate to one over the levels' widths
    x, y = step.get_xdata(), step.get_ydata()
    assert np.sum(y * np.gradient(x)) == pytest.approx(1.0, rel=1e-6)
    assert ax.get_yscale() == "log"
    matplotlib.pyplot.close(ax.figure)


def test_sqnr_by_layer_draws_a_line_per_recipe(net):
    reports = {r: quantize_model(net, r)[1] for r in ("int8/channel", "int4/channel")}
    ax = sqnr_by_layer(reports)
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["int8/channel", "int4/channel"]
    y8, y4 = lines[0].get_ydata(), lines[1].get_ydata()
    assert len(y8) == 2 and np.all(y8 > y4 + 20)  # four more bits: about 24 dB more
    matplotlib.pyplot.close(ax.figure)


def test_pareto_joins_the_recipes_no_other_beats():
    def row(name, bits, ppl):
        return RecipeRow(name, bits, 0, ppl, None, None, 0.0, 0.0)

    c = ModelComparison(
        "m",
        100,
        32,
        (
            row("fp32", None, 10.0),
            row("a", 8.0, 10.1),
            row("b", 4.5, 12.0),
            row("c", 5.0, 13.0),
            row("d", 4.0, 20.0),
        ),
    )
    ax = pareto(c)
    front = next(line for line in ax.get_lines() if line.get_label() == "best at its size")
    assert list(front.get_xdata()) == [4.0, 4.5, 8.0]  # c (5 bits, worse than b) is off it
    assert any(line.get_label().startswith("fp32") for line in ax.get_lines())
    assert [t.get_text() for t in ax.texts] == ["a", "b", "c", "d"]
    matplotlib.pyplot.close(ax.figure)
