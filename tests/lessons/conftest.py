"""The lessons train on scikit-learn's digits (no download); each result is made once."""

import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")


@pytest.fixture(scope="session")
def ptq_qat():
    from numfmt.lessons import ptq_vs_qat

    return ptq_vs_qat(bits=[8, 4, 3, 2], seed=0, progress=False)


@pytest.fixture(scope="session")
def walk():
    from numfmt.lessons import integer_walkthrough

    return integer_walkthrough(sample=3, seed=0)
