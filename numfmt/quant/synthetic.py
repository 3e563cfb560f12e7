"""Synthetic tensors, so that a lesson runs without any model.

===========  ===============================================================================
name         distribution (standard deviation about 1)
===========  ===============================================================================
normal       Gaussian: how trained weights usually look
laplace      heavier tails, a sharper peak: activations after some layers
student_t    Student's t with 4 degrees of freedom: heavy tails
outliers     normal, with 0.1% of the values multiplied by 20: the outlier features of LLMs
uniform      uniform on [-sqrt(3), sqrt(3)]: the easy case for a uniform grid
===========  ===============================================================================
"""

from __future__ import annotations

import numpy as np

from numfmt.errors import NumfmtError

DISTRIBUTIONS = ("normal", "laplace", "student_t", "outliers", "uniform")


def synthetic(name: str, shape: int | tuple[int, ...] = (256, 1024), seed: int = 0) -> np.ndarray:
    """A float32 tensor drawn from a named distribution, seeded.

    Examples:
        >>> bool(synthetic("outliers", 10_000).std() > synthetic("normal", 10_000).std())
        True
    """
    rng = np.random.default_rng(seed)
    key = name.strip().lower().replace("-", "_")
    if key == "normal":
        x = rng.standard_normal(shape)
    elif key == "laplace":
        x = rng.laplace(0.0, 1 / np.sqrt(2), shape)
    elif key in ("student_t", "t"):
        x = rng.standard_t(4, shape) / np.sqrt(2)
    elif key == "outliers":
        x = rng.standard_normal(shape)
        mask = rng.random(shape) < 0.001
        x = np.where(mask, x * 20, x)
    elif key == "uniform":
        x = rng.uniform(-np.sqrt(3), np.sqrt(3), shape)
    else:
        raise NumfmtError(f"unknown distribution '{name}'; use {', '.join(DISTRIBUTIONS)}")
    return np.asarray(x, dtype=np.float32)
