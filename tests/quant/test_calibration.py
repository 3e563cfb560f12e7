"""Range selection: each method on data where its answer is known or can be brute-forced."""

import numpy as np
import pytest

from numfmt.errors import NumfmtError
from numfmt.quant import calibration, choose_qparams, dequantize, parse_scheme, quantize, scheme
from numfmt.quant._xp import namespace
from numfmt.quant.synthetic import synthetic

xp = namespace(np.zeros(1))


def _mse(x, qp):
    return float(np.mean((dequantize(quantize(x, qp), qp) - x) ** 2))


def test_minmax_and_percentile():
    rows = np.array([[-4.0, -1.0, 0.0, 2.0, 3.0]])
    s = parse_scheme("int8")
    lo, hi = calibration.minmax(xp, rows, s)
    assert (lo[0], hi[0]) == (-4.0, 3.0)
    lo, hi = calibration.percentile(xp, rows, s, percentile=50)
    assert (lo[0], hi[0]) == (-2.0, 2.0)  # the median of |x| = 2
    lo, hi = calibration.percentile(xp, rows, parse_scheme("int8/asym"), percentile=75)
    assert (lo[0], hi[0]) == (np.percentile(rows, 25), np.percentile(rows, 75))
    wide = np.random.default_rng(0).standard_normal((3, 1001))
    lo, hi = calibration.percentile(xp, wide, parse_scheme("int8/asym"), percentile=99.3)
    assert np.allclose(hi, np.percentile(wide, 99.3, axis=1), rtol=1e-13)
    assert np.allclose(lo, np.percentile(wide, 0.7, axis=1), rtol=1e-13)


def test_mse_clips_outliers_and_wins():
    x = synthetic("outliers", (1, 20000), seed=1)
    minmax = choose_qparams(x, "int4")
    mse = choose_qparams(x, "int4/mse")
    assert float(mse.hi) < 0.5 * float(minmax.hi)
    assert _mse(x, mse) < 0.5 * _mse(x, minmax)


def test_search_with_a_custom_loss():
    x = synthetic("normal", (4, 1000), seed=2)
    worst = scheme(
        "int4",
        granularity="channel",
        method="search",
        loss=lambda rows, q: np.abs(rows - q).max(axis=1),
    )
    qp = choose_qparams(x, worst)
    assert np.all(qp.hi <= np.abs(x).max(axis=1) + 1e-12)
    # one number for all rows: every group takes the same ratio
    shared = scheme(
        "int4",
        granularity="channel",
        method="search",
        loss=lambda rows, q: float(np.mean((rows - q) ** 2)),
    )
    qp = choose_qparams(x, shared)
    ratios = np.maximum(-qp.lo, qp.hi) / np.abs(x).max(axis=1)
    assert np.allclose(ratios, ratios[0])


def _naive_kl_threshold(hist, edges, levels):
    """TensorRT's calibration as a plain loop over every candidate."""
    best, best_kl = len(hist), np.inf
    for i in range(levels, len(hist) + 1):
        p = hist[:i].astype(float)
        p[-1] += hist[i:].sum()
        q = np.zeros(i)
        width = i // levels
        for c in range(levels):
            stop = (c + 1) * width if c < levels - 1 else i
            idx = np.arange(c * width, stop)
            nz = hist[idx] > 0
            if nz.any():
                q[idx[nz]] = hist[idx].sum() / nz.sum()
        if q.sum() == 0:
            continue
        pn, qn = p / p.sum(), q / q.sum()
        m = pn > 0
        kl = np.sum(pn[m] * np.log(pn[m] / np.where(qn[m] > 0, qn[m], 1e-12)))
        if kl < best_kl:
            best, best_kl = i, kl
    return edges[best]


def test_entropy_threshold_agrees_with_a_naive_loop():
    x = np.abs(synthetic("laplace", (2, 50_000), seed=3))
    x[1] *= 3
    tops = x.max(axis=1)
    naive = []
    for row, top in zip(x, tops, strict=True):
        hist, edges = np.histogram(row, bins=200, range=(0, top))
        naive.append(_naive_kl_threshold(hist, edges, 8))
    hist = calibration.histograms(xp, x, np.zeros(2), tops, 200)
    assert np.array_equal(hist[0], np.histogram(x[0], bins=200, range=(0, tops[0]))[0])
    ours = calibration.entropy_thresholds(xp, hist, tops, 8)
    assert ours == pytest.approx(naive)


def test_entropy_clips_heavy_tails_but_not_a_uniform_tensor():
    heavy = synthetic("outliers", (1, 50000), seed=4)
    qp = choose_qparams(heavy, "int8/entropy")
    assert float(qp.hi) < 0.6 * np.abs(heavy).max()
    flat = synthetic("uniform", (1, 50000), seed=4)
    qp = choose_qparams(flat, "int8/entropy")
    assert float(qp.hi) > 0.9 * np.abs(flat).max()


@pytest.mark.parametrize("spec", ["int4", "int4/asym", "int8"])
def test_l2_histogram_lands_near_the_true_mse_optimum(spec):
    x = synthetic("student_t", (1, 40000), seed=5)
    chosen = _mse(x, choose_qparams(x, f"{spec}/l2_histogram"))
    best = _mse(x, choose_qparams(x, f"{spec}/mse:200"))
    assert chosen <= 1.25 * best
    assert chosen < _mse(x, choose_qparams(x, spec))  # and it beats minmax here


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "magic"}, "unknown calibration method"),
        ({"method": "mse", "percentile": 99.0}, "takes ratios"),
        ({"method": "minmax", "bins": 10}, "takes no options"),
        ({"method": "search", "loss": 3}, "callable"),
        ({"method": "search"}, "needs loss"),
    ],
)
def test_bad_methods(kwargs, message):
    with pytest.raises(NumfmtError, match=message):
        scheme("int8", **kwargs)


def test_search_is_public_through_choose_qparams():
    x = synthetic("normal", (4, 1000), seed=7)
    by_max = choose_qparams(
        x, "int4/channel", method="search", loss=lambda r, q: np.abs(r - q).max(axis=1)
    )
    by_mse = choose_qparams(x, "int4/channel", method="mse")
    assert by_max.scheme.method == "search" and str(by_max.scheme) == "int4/channel/search"
    assert not np.array_equal(by_max.hi, by_mse.hi)
    with pytest.raises(NumfmtError, match=r"Python only|from Python"):
        parse_scheme("int4/search")


def test_searches_choose_the_widest_of_equal_losses():
    losses = np.array([[3.0, 1.0, 1.0 + 1e-12, 0.5], [2.0, 2.0, 2.0, 2.0], [0.0, 0.0, 1.0, 0.0]])
    assert calibration.first_least(xp, losses).tolist() == [3, 0, 0]
    near = np.array([[1.0 + 1e-11, 1.0]])  # within 1e-9: the first (wider) one
    assert calibration.first_least(xp, near).tolist() == [0]
