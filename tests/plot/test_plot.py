"""Every figure draws on the Agg backend, onto the Axes it is given, into a real file."""

import pytest

plt = pytest.importorskip("matplotlib.pyplot")

from numfmt import plot  # noqa: E402
from numfmt.quant.synthetic import synthetic  # noqa: E402

X = synthetic("laplace", (16, 256), seed=0)


@pytest.mark.parametrize(
    "draw",
    [
        lambda ax: plot.error_curve(X, bits=[2, 4, 8], ax=ax),
        lambda ax: plot.clipping(X, "int4", ratios=20, ax=ax),
        lambda ax: plot.grid(X, "int4/asym", ax=ax),
        lambda ax: plot.grid(X, "nf4", ax=ax),
        lambda ax: plot.ranges(ax=ax),
        lambda ax: plot.rel_error("bf16", ax=ax),
    ],
    ids=["error-curve", "clipping", "grid", "grid-nf4", "ranges", "rel-error"],
)
def test_figures(draw, tmp_path):
    fig, ax = plt.subplots()
    assert draw(ax) is ax
    assert ax.get_title() and (ax.lines or ax.patches or ax.collections)
    out = tmp_path / "f.png"
    fig.savefig(out)
    assert out.stat().st_size > 5000
    plt.close(fig)


def test_a_new_figure_when_no_axes_is_given():
    before = set(plt.get_fignums())
    ax = plot.rel_error("fp16")
    new = set(plt.get_fignums()) - before
    assert len(new) == 1 and ax.figure.number in new  # a figure of its own, not the current one
    assert len(ax.lines) == 2 and ax.get_xscale() == "log"
    plt.close(ax.figure)
