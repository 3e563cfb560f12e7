"""Values on a quantization grid of a given range, through numfmt's quantization engine: the
exercises that fix a range (a calibrated alpha, a step of 0.25) rather than measure one."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np


def fixed_range(alpha: Fraction, scheme: str) -> Any:
    """The parameters of a symmetric grid whose range is ±alpha (calibrated on ±alpha), so
    that its scale is alpha / qmax: ``fixed_range(Fraction(7, 4), "int4")`` steps by 0.25."""
    from numfmt.quant import choose_qparams

    return choose_qparams(np.array([-float(alpha), float(alpha)]), scheme)


def on_grid(values: list[Fraction], qparams: Any) -> list[Fraction]:
    """Each value quantized and dequantized on the grid of ``qparams``, exactly as stored."""
    from numfmt.quant import dequantize, quantize

    a = np.array([float(v) for v in values])
    return [Fraction(float(v)) for v in dequantize(quantize(a, qparams), qparams)]


def two_places(values: Any) -> list[Fraction]:
    """Values rounded to two decimals, exactly (what the question prints is what is used)."""
    return [Fraction(round(float(v) * 100), 100) for v in values]


def listed(values: list[Fraction], places: int = 2) -> str:
    return ", ".join(f"{float(v):.{places}f}" for v in values)
