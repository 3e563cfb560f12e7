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
