"""The element grids: from a range to a scale, and rows of values to codes and back.

Everything here works on *rows*: a 2-D block whose rows are groups sharing one scale (see
``granularity.Grouping``), with one scale (and zero point) per row.

=============  =================================  =====================================
target         codes                              value of a code
=============  =================================  =====================================
int, sym       clip(round(x / s), qmin, qmax)     q * s
int, asym      clip(round(x / s) + z, 0, 2^b-1)   (q - z) * s
float format   encode(x / s, saturating)          decode(q) * s
codebook       nearest codebook entry to x / s    codebook[q] * s
=============  =================================  =====================================

Quotients are computed in float64 (one rounding), so a code is the correctly rounded x / s
but for quotients within 2^-53 of a tie.
"""

from __future__ import annotations

import numpy as np

from numfmt.formats import decode, encode, round_to
from numfmt.formats.rounding import Rounding
from numfmt.quant.scheme import Mapping, QuantScheme

#: The largest value of the OCP formats NVFP4 is built from: E2M1 elements, E4M3 scales.
_FP4_MAX, _E4M3_MAX = 6.0, 448.0


def global_scale(amax: float, scheme: QuantScheme) -> float | None:
    """The float32 tensor scale of NVFP4 (amax / (6 * 448)); None for other rules."""
    if scheme.scale_rule != "nvfp4":
        return None
    g = float(np.float32(amax / (_FP4_MAX * _E4M3_MAX)))
    return g if g > 0 else 1.0


def scales(
    lo: np.ndarray, hi: np.ndarray, scheme: QuantScheme, tensor_scale: float | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Stored scales (and zero points) for groups whose chosen range is [lo, hi].

    Returns:
        (scale, zero_point): float64 scales exactly as the scale format stores them (for
        NVFP4 the E4M3 block scale, to be multiplied by ``tensor_scale``), and int64 zero
        points for asymmetric int targets (else None).
    """
    lo = np.minimum(np.asarray(lo, dtype=np.float64), 0.0)  # the range always holds zero
    hi = np.maximum(np.asarray(hi, dtype=np.float64), 0.0)
    amax = np.maximum(-lo, hi)
    if scheme.scale_rule == "mx":
        return _mx_scales(amax, scheme), None
    if scheme.scale_rule == "nvfp4":  # the E4M3 block scale is a nearest-even cast
        block = amax / (_FP4_MAX * (tensor_scale or 1.0))
        return _store(block, scheme, "nearest-even"), None
    if scheme.mapping is Mapping.ASYMMETRIC:
        s = _store((hi - lo) / (scheme.qmax - scheme.qmin), scheme)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(s > 0, np.rint(scheme.qmin - lo / s), scheme.qmin)
        return s, np.clip(z, scheme.qmin, scheme.qmax).astype(np.int64)
    if scheme.kind == "int" and not scheme.restricted:
        # the full range -2^(b-1) .. 2^(b-1) - 1 spans 2^b - 1 steps, as torch's observers count
        return _store(amax / ((scheme.qmax - scheme.qmin) / 2), scheme), None
    return _store(amax / scheme.grid_max, scheme), None


def _store(s: np.ndarray, scheme: QuantScheme, rounding: str = "up") -> np.ndarray:
    """A scale as its format holds it (float32 by default). Rounded up, so that the chosen
    range stays inside the grid: no element is clipped by the rounding of its scale."""
    return np.asarray(round_to(s, scheme.scale_format, rounding, "saturate"), dtype=np.float64)


def _mx_scales(amax: np.ndarray, scheme: QuantScheme) -> np.ndarray:
    """OCP MX v1.0: X = 2^(floor(log2(amax)) - emax_elem), kept within E8M0's 2^-127..2^127;
    an all-zero block gets 2^-127. INT8 elements carry an implicit 2^-6."""
    fmt = scheme.element_format
    emax = fmt.emax if scheme.kind == "float" else 0
    with np.errstate(divide="ignore"):
        exponent = np.where(amax > 0, np.floor(np.log2(np.where(amax > 0, amax, 1.0))) - emax, -127)
    exponent = np.clip(exponent, -127, 127)
    implicit = 0 if scheme.kind == "float" else -(scheme.bits - 2)
    return np.ldexp(1.0, (exponent + implicit).astype(np.int64))


def quantize_rows(
    rows: np.ndarray,
    scale: np.ndarray,
    zero_point: np.ndarray | None,
    scheme: QuantScheme,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Codes of each row under its scale: int64 for int targets, unsigned for the others."""
    s = scale[:, None]
    dead = s == 0  # an all-zero group, or a scale that underflowed its format
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        v = np.divide(rows, s, dtype=np.float64)  # inf for omitted infinities: they clip
    if dead.any():
        v = np.where(dead, 0.0, v)
    if scheme.kind == "float":
        return encode(v, scheme.element_format, scheme.rounding, "saturate", seed=rng)
    if scheme.kind == "codebook":
        return _nearest(v, scheme.codebook, scheme.rounding, rng)
    q = _round(v, scheme.rounding, rng)
    if zero_point is not None:
        q += zero_point[:, None]
    np.clip(q, scheme.qmin, scheme.qmax, out=q)
    return q.astype(np.int64)


def dequantize_rows(
    codes: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None, scheme: QuantScheme
) -> np.ndarray:
    """Values of codes under each row's scale, in float64."""
    s = scale[:, None]
    if scheme.kind == "float":
        return decode(codes, scheme.element_format) * s
    if scheme.kind == "codebook":
        return scheme.codebook[codes] * s
    q = codes.astype(np.float64)
    if zero_point is not None:
        q -= zero_point[:, None]
    return q * s


def _round(v: np.ndarray, rounding: Rounding, rng: np.random.Generator | None) -> np.ndarray:
    if rounding is Rounding.NEAREST_EVEN:
        return np.rint(v)
    floor = np.floor(v)
    rng = rng or np.random.default_rng(0)
    return floor + (rng.random(v.shape) < v - floor)


def _nearest(v, codebook, rounding, rng) -> np.ndarray:
    """Index of the nearest codebook entry (a tie goes to the lower); stochastic: one of the
    two neighbours, the upper with probability proportional to the distance from the lower."""
    top = len(codebook) - 1
    v = np.clip(v, codebook[0], codebook[-1])
    if rounding is Rounding.NEAREST_EVEN:
        mids = (codebook[1:] + codebook[:-1]) / 2
        return np.searchsorted(mids, v, side="left").astype(np.uint8)
    upper = np.clip(np.searchsorted(codebook, v, side="left"), 1, top)
    lower = upper - 1
    p = (v - codebook[lower]) / (codebook[upper] - codebook[lower])
    rng = rng or np.random.default_rng(0)
    return np.where(rng.random(v.shape) < p, upper, lower).astype(np.uint8)


def grid_values(scheme: QuantScheme) -> np.ndarray:
    """Every value of the unscaled grid, ascending (int codes minus zero point excluded)."""
    if scheme.kind == "codebook":
        return np.asarray(scheme.codebook)
    if scheme.kind == "int":
        return np.arange(scheme.qmin, scheme.qmax + 1, dtype=np.float64)
    fmt = scheme.element_format
    values = decode(np.arange(fmt.num_codes, dtype=fmt.code_dtype), fmt)
    return np.unique(values[np.isfinite(values)])
