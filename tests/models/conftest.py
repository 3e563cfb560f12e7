"""These tests need torch (the tiny models are in tests/conftest.py)."""

import pytest

pytest.importorskip("torch")
