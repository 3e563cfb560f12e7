"""PTQ against QAT on the digits: the shape every course draws, asserted with margins."""

import json
import sys

import pytest

from numfmt.errors import NumfmtError
from numfmt.lessons import ptq_vs_qat
from numfmt.lessons.qat import METHODS

pytestmark = pytest.mark.slow  # the digits trained several times (about 20 s)


def test_the_float_network_learns_the_digits(ptq_qat):
    assert ptq_qat.rows[0].method == "float" and ptq_qat.rows[0].bits is None
    assert ptq_qat.accuracy("float") > 0.95
    assert ptq_qat.config["test"] == 450 and ptq_qat.config["train"] == 1347


def test_every_method_is_near_float_at_8_bits(ptq_qat):
    base = ptq_qat.accuracy("float")
    for method in METHODS[1:]:
        assert abs(ptq_qat.accuracy(method, 8) - base) <= 0.02, method


def test_rounding_after_training_breaks_at_2_bits_and_qat_recovers_most_of_it(ptq_qat):
    base = ptq_qat.accuracy("float")
    minmax = ptq_qat.accuracy("ptq-minmax", 2)
    assert minmax < base - 0.3  # three levels per channel from the largest weight: broken
    assert ptq_qat.accuracy("ptq-mse", 2) > minmax + 0.1  # a better clip range helps
    for method in ("qat", "qat-lsq"):
        lost = base - ptq_qat.accuracy(method, 2)
        assert lost <= 0.25 * (base - minmax), method  # recovers at least 3/4 of the loss
    best_ptq = {b: max(ptq_qat.accuracy(m, b) for m in ("ptq-minmax", "ptq-mse")) for b in (2, 3)}
    best_qat = {b: max(ptq_qat.accuracy(m, b) for m in ("qat", "qat-lsq")) for b in (2, 3)}
    for b in (2, 3):
        assert best_qat[b] >= best_ptq[b], b
    assert base - best_qat[2] <= 0.5 * (base - best_ptq[2])
    assert ptq_qat.accuracy("qat-lsq", 2) >= ptq_qat.accuracy("qat", 2)  # learned scales


def test_rows_curves_and_json(ptq_qat):
    assert len(ptq_qat.rows) == 1 + 4 * 4
    assert ptq_qat.bits == [8, 4, 3, 2] and ptq_qat.methods == list(METHODS)
    assert len(ptq_qat.curves["float"]) == 60
    assert {k for k in ptq_qat.curves if k != "float"} == {
        f"{m} int{b}" for m in ("qat", "qat-lsq") for b in (8, 4, 3, 2)
    }
    assert all(len(v) == 10 for k, v in ptq_qat.curves.items() if k != "float")
    loss, acc = zip(*ptq_qat.curves["float"], strict=True)
    assert loss[-1] < 0.2 * loss[0]  # training lowered the loss
    assert acc[-1] == pytest.approx(ptq_qat.accuracy("float"))
    d = json.loads(ptq_qat.to_json())
    assert d["rows"][0] == {"method": "float", "bits": None, "accuracy": ptq_qat.accuracy("float")}
    assert {(r["method"], r["bits"]) for r in d["rows"][1:]} == {
        (m, b) for m in METHODS[1:] for b in (8, 4, 3, 2)
    }
    assert d["curves"]["qat int2"][0]["epoch"] == 1
    with pytest.raises(NumfmtError, match="no row"):
        ptq_qat.accuracy("qat", 5)


def test_the_views_show_the_table(ptq_qat):
    from numfmt.cli.base import pipe_text

    text = pipe_text(ptq_qat)
    assert "float32: 97.6%" in text or f"float32: {ptq_qat.accuracy('float'):.1%}" in text
    line = next(row for row in text.splitlines() if row.strip().startswith("int2"))
    assert f"{ptq_qat.accuracy('ptq-minmax', 2):.1%}" in line
    assert "<table" in ptq_qat._repr_html_() or "<pre" in ptq_qat._repr_html_()


def test_same_seed_same_numbers_and_a_progress_per_model():
    seen = []
    kwargs = dict(bits=[2], methods=["qat"], epochs=5, qat_epochs=2)
    a = ptq_vs_qat(**kwargs, progress=seen.append)
    b = ptq_vs_qat(**kwargs, progress=False)
    assert a.rows == b.rows and seen == ["float", "qat int2"]
    c = ptq_vs_qat(**kwargs, seed=1, progress=False)
    assert c.rows != a.rows


def test_quantized_activations_cost_accuracy():
    kwargs = dict(bits=[8], methods=["ptq-minmax", "qat"], epochs=20, qat_epochs=2)
    plain = ptq_vs_qat(**kwargs, progress=False)
    coarse = ptq_vs_qat(**kwargs, activations=2, progress=False)
    assert coarse.config["activations"] == "int2/asym"
    assert coarse.accuracy("ptq-minmax", 8) < plain.accuracy("ptq-minmax", 8) - 0.03


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bits": [1]}, "from 2 to 16; 1"),
        ({"bits": [17]}, "from 2 to 16; 17"),
        ({"bits": [2.5]}, "2.5"),
        ({"bits": ["x"]}, "whole numbers"),
        ({"bits": [float("nan")]}, "whole numbers"),
        ({"bits": []}, "at least one"),
        ({"activations": 1}, "activation bits"),
        ({"methods": ["gptq"]}, "unknown method 'gptq'"),
        ({"epochs": 0}, "epochs"),
    ],
)
def test_bad_input_gets_one_message(kwargs, message):
    with pytest.raises(NumfmtError, match=message):
        ptq_vs_qat(**kwargs)


def test_without_scikit_learn_the_message_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(NumfmtError, match=r"needs scikit-learn, which is not installed: pip ") as e:
        ptq_vs_qat(bits=[8])
    assert "[lessons]'" in str(e.value) or "'scikit-learn" in str(
        e.value
    )  # the extra, or the package
