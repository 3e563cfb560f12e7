import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

import importlib

from numfmt.formats import _kernels

# the module, not the function of the same name that numfmt.formats re-exports
encode_module = importlib.import_module("numfmt.formats.encode")

BACKENDS = ["numpy", "numba"] if _kernels.available() else ["numpy"]


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch):
    """Run an array test on each encoder backend: pure numpy, and the numba kernels."""
    monkeypatch.setattr(encode_module, "BACKEND", request.param)
    return request.param


@pytest.fixture(scope="session")
def ptq_qat():
    """The digits lesson's PTQ against QAT, made once a session (lessons and their views)."""
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    from numfmt.lessons import ptq_vs_qat

    return ptq_vs_qat(bits=[8, 4, 3, 2], seed=0, progress=False)


@pytest.fixture(scope="session")
def walk():
    """One digit through the integer network, made once a session."""
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    from numfmt.lessons import integer_walkthrough

    return integer_walkthrough(sample=3, seed=0)
