"""The lessons train on scikit-learn's digits (no download); each result is made once (the
fixtures ptq_qat and walk live in tests/conftest.py, shared with the views' tests)."""

import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")
