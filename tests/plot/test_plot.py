"""Every figure draws on the Agg backend, onto the Axes it is given, into a real file."""

import numpy as np
import pytest

plt = pytest.importorskip("matplotlib.pyplot")

from numfmt import plot  # noqa: E402
from numfmt.quant import analysis  # noqa: E402
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


# Marks and lines that would hide one another (issue 18): each stays visible, and the legend
# says which one lies on which.

SMALL = {d: synthetic(d, (32, 256), seed=0) for d in ("outliers", "normal")}


def _page(ax, x, y):
    """Positions in points on the page, computed apart from numfmt.plot._overlap."""
    xy = ax.transData.transform(np.column_stack([x, y]))
    return xy * 72.0 / ax.figure.dpi


def _marks(ax):
    return [c for c in ax.collections if not c.get_label().startswith("_")]


def _assert_no_mark_hides_another(ax):
    ax.figure.canvas.draw()
    marks = _marks(ax)
    for i, a in enumerate(marks):
        for b in marks[i + 1 :]:
            (pa,), (pb,) = _page(ax, *a.get_offsets().T), _page(ax, *b.get_offsets().T)
            reach = (np.sqrt(a.get_sizes()[0]) + np.sqrt(b.get_sizes()[0])) / 2
            if np.hypot(*(pa - pb)) >= reach:
                continue
            top, below = (a, b) if a.get_zorder() > b.get_zorder() else (b, a)
            assert top.get_zorder() > below.get_zorder(), (a.get_label(), b.get_label())
            assert top.get_sizes()[0] < below.get_sizes()[0], (top.get_label(), below.get_label())
            assert "≈" in top.get_label() or "same as" in top.get_label()


@pytest.mark.parametrize("dist", ["outliers", "normal"])
def test_clipping_shows_every_method(dist):
    ax = plot.clipping(SMALL[dist], "int4", ratios=40)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    methods = ("minmax", "percentile", "mse", "entropy", "l2_histogram")
    assert [label.split(" ")[0] for label in labels[1:]] == list(methods)
    shapes = {tuple(map(tuple, m.get_paths()[0].vertices.round(3))) for m in _marks(ax)}
    assert len(shapes) == len(methods)  # a shape per method: told apart where colours meet
    # mse and l2_histogram pick almost the same range on both: the later is drawn over it
    assert "l2_histogram (≈ mse)" in labels
    _assert_no_mark_hides_another(ax)
    plt.close(ax.figure)


def test_marks_on_the_same_numbers_say_so():
    c = analysis.Curves(
        "t",
        "x",
        "y",
        {"curve": (np.linspace(0, 1, 50), np.linspace(0, 1, 50))},
        {"a": (0.5, 0.5), "b": (0.5, 0.5), "c": (0.501, 0.5), "d": (0.9, 0.1)},
    )
    ax = plot.curves(c)
    labels = [m.get_label() for m in _marks(ax)]
    assert labels == ["a", "b (same as a)", "c (≈ a)", "d"]
    sizes = [m.get_sizes()[0] for m in _marks(ax)]
    assert sizes[0] > sizes[1] > sizes[2] and sizes[3] == sizes[0]  # nested, smallest on top
    keys = [h.get_sizes()[0] for h in ax.get_legend().legend_handles if hasattr(h, "get_sizes")]
    assert len(keys) == 4 and len(set(keys)) == 1  # the key shows every shape full size
    _assert_no_mark_hides_another(ax)
    plt.close(ax.figure)


def _assert_no_line_hides_another(ax):
    ax.figure.canvas.draw()
    lines = [line for line in ax.lines if not line.get_label().startswith("_")]
    for i, a in enumerate(lines):
        for b in lines[i + 1 :]:
            pa, pb = _page(ax, *a.get_data()), _page(ax, *b.get_data())
            if np.mean(np.hypot(*(pa - pb).T) < a.get_markersize()) < 0.5:
                continue
            assert a.get_marker() != b.get_marker(), (a.get_label(), b.get_label())
            assert a.get_linestyle() != b.get_linestyle(), (a.get_label(), b.get_label())
            assert b.get_zorder() > a.get_zorder() and b.get_markerfacecolor() == "none"


def test_error_curve_lines_that_coincide_stay_visible():
    ax = plot.error_curve(SMALL["outliers"])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    # on outliers, the zero point buys nothing: asym lies on sym at every width
    assert labels == ["intN", "intN/asym (≈ intN)", "intN/channel", "intN/group:32"]
    _assert_no_line_hides_another(ax)
    plt.close(ax.figure)


def test_identical_series_are_labelled_the_same():
    x = np.arange(2.0, 9.0)
    c = analysis.Curves("t", "bits", "y", {"a": (x, 6 * x), "b": (x, 6 * x), "c": (x, 3 * x)})
    ax = plot.curves(c)
    assert [line.get_label() for line in ax.lines] == ["a", "b (same as a)", "c"]
    assert ax.lines[2].get_linestyle() == "-"  # only what lies on another is dashed
    _assert_no_line_hides_another(ax)
    plt.close(ax.figure)


def test_ranges_axis_hugs_the_data_and_every_label_fits():
    ax = plot.ranges()
    rows = analysis.format_ranges().rows
    lo = min(r["log2_smallest"] for r in rows)
    hi = max(r["log2_max"] for r in rows)
    left, right = ax.get_xlim()
    assert lo - 0.05 * (hi - lo) <= left <= lo and hi <= right <= hi + 0.05 * (hi - lo)
    fig = ax.figure
    fig.canvas.draw()
    page = fig.bbox
    (precision,) = ax.child_axes
    texts = [
        ax.title,
        ax.xaxis.label,
        precision.yaxis.label,
        *ax.get_yticklabels(),
        *ax.get_xticklabels(),
        *precision.get_yticklabels(),
    ]
    assert "24 bits: 23 stored + 1 hidden" in [t.get_text() for t in texts]
    for t in texts:
        if not t.get_text():
            continue
        box = t.get_window_extent()
        assert page.x0 <= box.x0 and box.x1 <= page.x1, t.get_text()
        assert page.y0 <= box.y0 and box.y1 <= page.y1, t.get_text()
    frame = ax.get_window_extent()
    for t in precision.get_yticklabels():  # beside the bars, not over them
        assert t.get_window_extent().x0 >= frame.x1
    plt.close(fig)


def test_overlap_examples_run():
    import doctest

    from numfmt.plot import _overlap

    result = doctest.testmod(_overlap)
    assert result.attempted > 0 and result.failed == 0
