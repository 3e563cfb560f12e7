import importlib.util

import pytest

HAS_TORCH = importlib.util.find_spec("torch") is not None


def _cuda() -> bool:
    if not HAS_TORCH:
        return False
    import torch

    return torch.cuda.is_available()


#: Run a test on the CPU and, where a GPU is there, on CUDA (skipped cleanly without one).
DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.cuda),
]


@pytest.fixture
def torch():
    return pytest.importorskip("torch")
