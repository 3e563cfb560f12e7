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
