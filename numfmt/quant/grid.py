"""The element grids: from a range to a scale, and rows of values to codes and back.

Everything here works on *rows*: a 2-D block whose rows are groups sharing one scale (see
``granularity.Grouping``), with one scale (and zero point) per row, and is written once for
numpy arrays and torch tensors (``xp`` is the array namespace, see ``_xp.py``).

=============  =================================  =====================================
target         codes                              value of a code
=============  =================================  =====================================
int, sym       clip(round(x / s), qmin, qmax)     q * s
int, asym      clip(round(x / s) + z, 0, 2^b-1)   (q - z) * s
int, min       clip(round((x - m) / s), 0, 2^b-1) q * s + m
float format   x / s rounded into the format,     the format's value of q, times s
               saturating
codebook       nearest codebook entry to x / s    codebook[q] * s
=============  =================================  =====================================

Quotients are computed in float64 (one rounding), so a code is the correctly rounded x / s
but for quotients within 2^-53 of a tie; for float32 inputs and float32 (or narrower) scales
no quotient comes that close to a tie without being one, so the codes are exact.
"""

from __future__ import annotations

from typing import Any, NamedTuple, cast

import numpy as np

from numfmt.formats import FloatFormat, decode, get_format
from numfmt.formats.decode import decode_table
from numfmt.formats.rounding import Rounding
from numfmt.quant import _gpu, _kernels, _xp
from numfmt.quant.schemes import Mapping, QuantScheme

#: The largest value of the OCP formats NVFP4 is built from: E2M1 elements, E4M3 scales.
_FP4_MAX, _E4M3_MAX = 6.0, 448.0


class Scales(NamedTuple):
    """Per-group parameters of one block, as stored, and what the scale rounding met.

    scale: float64, exactly as the scale format stores it (NVFP4: the E4M3 block scale).
    zero_point: int64 codes (asymmetric), else None.
    minimum: float64 minimum as the scale format stores it (float-min mapping), else None.
    code_scale, code_minimum: what the codes were computed with when it is not the stored
        scale (GGUF rounds its float32 scale to float16 after computing the codes), else None.
    saturated: a bool per group: the scale (or minimum) did not fit its format and was
        saturated, so the group's range is clipped.
    """

    # numpy arrays or torch tensors
    scale: Any
    zero_point: Any = None
    minimum: Any = None
    code_scale: Any = None
    code_minimum: Any = None
    saturated: Any = None


# -- rounding into a float format, in the array namespace -----------------------------------------
def round_float(xp, v, fmt: FloatFormat, mode: str = "nearest-even", u=None):
    """v (float64) rounded to a value of ``fmt``, saturating at its largest finite value.

    Exact for every format of 52 mantissa bits or fewer whose range lies inside float64's:
    frexp finds each value's binade, and scaling by powers of two is exact.

    Args:
        mode: ``nearest-even``, ``up`` (toward +inf), ``down`` (toward -inf) or
            ``stochastic`` (up with probability equal to the distance from the value below,
            ``u`` uniform in [0, 1) per element).

    Returns:
        (values as float64 with v's sign, a bool array: the magnitude exceeded the largest
        finite value and was saturated).
    """
    if fmt.name == "float32" and mode != "stochastic":
        return _round_by_cast(xp, v, fmt, mode)
    return _round_by_binades(xp, v, fmt, mode, u)


def _round_by_binades(xp, v, fmt: FloatFormat, mode: str, u=None):
    """round_float by frexp and ldexp: any format, any mode."""
    a = xp.abs(v)
    _, e = _xp.frexp(xp, a)
    shift = xp.maximum(e - 1, fmt.emin) - fmt.mantissa_bits  # the quantum of a's binade
    q = _xp.ldexp(xp, a, -shift)
    if mode == "nearest-even":
        q = xp.round(q)
    elif mode in ("up", "down"):
        away = xp.signbit(v) if mode == "down" else ~xp.signbit(v)
        q = xp.where(away, xp.ceil(q), xp.floor(q))
    elif mode == "stochastic":
        low = xp.floor(q)
        q = low + xp.astype(u < q - low, low.dtype)
    else:  # pragma: no cover - the callers pass the modes above
        raise ValueError(mode)
    r = _xp.ldexp(xp, q, shift)
    top = float(fmt.max_value)
    over = r > top
    r = xp.minimum(r, top)
    if not fmt.has_subnormals:  # no zero and nothing below the smallest normal (E8M0)
        r = xp.maximum(r, float(fmt.min_normal))
    return xp.copysign(r, v), over


def _round_by_cast(xp, v, fmt: FloatFormat, mode: str):
    """round_float into float32 by the hardware's cast (correctly rounded to nearest-even in
    numpy and torch alike), then one step toward the asked direction where it went the other
    way: the same values as the binade arithmetic, in a fraction of its passes."""
    top = float(fmt.max_value)
    with np.errstate(over="ignore"):  # beyond float32 is inf here, saturated below
        f = xp.astype(v, xp.float32)
    if mode == "nearest-even":
        over = xp.isinf(f)
    else:
        # one step toward the asked direction where the cast went the other way, on the bit
        # patterns (a select per element costs ten times more): +1 steps a magnitude away from
        # zero. A zero never needs the step toward its own sign, so -0.0 is never stepped.
        up = mode == "up"
        wrong = xp.astype(f < v if up else f > v, xp.int32)
        away = 1 - 2 * xp.astype(xp.signbit(f), xp.int32)
        f = (f.view(xp.int32) + (wrong * away if up else -wrong * away)).view(xp.float32)
        # as on magnitudes: rounded away from zero anything past the top saturates, toward
        # zero only what lies a whole step past it
        a = xp.abs(v)
        outward = v > 0 if up else v < 0
        over = (outward & (a > top)) | (~outward & (a >= 2.0 ** (fmt.emax + 1)))
    r = xp.astype(f, xp.float64)
    return xp.clip(r, -top, top), over


def float_codes(xp, r, fmt: FloatFormat):
    """Codes (int64) of values that ``round_float`` produced (finite, on the format's grid).

    A negative value that rounded to zero gets the negative-zero code where the format has one,
    as ``numfmt.encode`` gives it.
    """
    a = xp.abs(r)
    _, e = _xp.frexp(xp, a)
    m = fmt.mantissa_bits
    es = xp.maximum(e - 1, fmt.emin)
    q = _xp.ldexp(xp, a, -(es - m))  # the significand as an integer-valued float
    subnormals = int(fmt.has_subnormals)
    mag = xp.astype((es - fmt.emin + subnormals) * (1 << m), xp.int64) + xp.astype(q, xp.int64)
    mag = mag - (1 << m)
    if subnormals:
        mag = xp.where(a == 0, xp.zeros_like(mag), mag)
    neg = xp.signbit(r)
    if not fmt.has_negative_zero:
        neg = neg & (mag != 0)
    return xp.where(neg, mag | fmt.sign_mask, mag)


def _store(xp, s, fmt_name: str, mode: str = "up"):
    """A scale (or minimum) as its format holds it: (values, saturated). Scales round up, so
    that the chosen range stays inside the grid: no element is clipped by that rounding."""
    fmt = cast(FloatFormat, get_format(fmt_name))  # a scale format (QuantScheme checks it)
    return round_float(xp, s, fmt, mode)


# -- scales ---------------------------------------------------------------------------------------
def global_scale(xp, amax, scheme: QuantScheme):
    """NVFP4's float32 tensor scale, amax / (6 * 448), as a 0-d float64 array (1 when the
    tensor is all zeros); None for other rules."""
    if scheme.scale_rule != "nvfp4":
        return None
    g = xp.astype(xp.astype(amax / (_FP4_MAX * _E4M3_MAX), xp.float32), xp.float64)
    return xp.where(g > 0, g, xp.ones_like(g))


def scales(xp, lo, hi, scheme: QuantScheme, tensor_scale=None) -> Scales:
    """Stored scales (and zero points or minima) for groups whose chosen range is [lo, hi]."""
    fused = (
        _kernels.int_scales(lo, hi, scheme)
        if _xp.on_cpu(lo)
        else _gpu.int_scales(lo, hi, scheme)  # (None off CUDA: the array namespace's path)
    )
    if fused is not None:
        s, z, over = (None if a is None else xp.reshape(a, lo.shape) for a in fused)
        return Scales(s, zero_point=z, saturated=over)
    lo = xp.minimum(xp.astype(lo, xp.float64), 0.0)  # the range always holds zero
    hi = xp.maximum(xp.astype(hi, xp.float64), 0.0)
    amax = xp.maximum(-lo, hi) + 0.0  # + 0.0: no -0.0 scales
    if scheme.scale_rule == "mx":
        return Scales(_mx_scales(xp, amax, scheme), saturated=xp.zeros_like(amax, dtype=xp.bool))
    if scheme.scale_rule == "nvfp4":  # the E4M3 block scale is a nearest-even cast
        block = amax / (_FP4_MAX * tensor_scale)
        s, over = _store(xp, block, scheme.scale_format, "nearest-even")
        return Scales(s, saturated=over)
    if scheme.mapping is Mapping.ASYMMETRIC:
        s, over = _store(xp, (hi - lo) / (scheme.qmax - scheme.qmin), scheme.scale_format)
        live = s > 0
        z = xp.round(scheme.qmin - lo / xp.where(live, s, xp.ones_like(s)))
        z = xp.where(live, z, xp.full_like(z, scheme.qmin))
        z = xp.astype(xp.clip(z, scheme.qmin, scheme.qmax), xp.int64)
        return Scales(s, zero_point=z, saturated=over)
    if scheme.mapping is Mapping.FLOAT_MIN:
        m, m_over = _store(xp, lo, scheme.scale_format, "down")  # at or below the range
        s, over = _store(xp, (hi - m) / scheme.qmax, scheme.scale_format)
        return Scales(s, minimum=m, saturated=over | m_over)
    if scheme.kind == "int" and not scheme.restricted:
        # the full range -2^(b-1) .. 2^(b-1) - 1 spans 2^b - 1 steps, as torch's observers count
        s, over = _store(xp, amax / ((scheme.qmax - scheme.qmin) / 2), scheme.scale_format)
        return Scales(s, saturated=over)
    s, over = _store(xp, amax / scheme.grid_max, scheme.scale_format)
    return Scales(s, saturated=over)


def _mx_scales(xp, amax, scheme: QuantScheme):
    """OCP MX v1.0: X = 2^(floor(log2(amax)) - emax_elem), kept within E8M0's 2^-127..2^127;
    an all-zero block gets 2^-127. INT8 elements carry an implicit 2^-6."""
    fmt = scheme.element_format
    emax = cast(FloatFormat, fmt).emax if scheme.kind == "float" else 0
    _, e = _xp.frexp(xp, amax)  # amax = m * 2^e with m in [0.5, 1): floor(log2) = e - 1
    exponent = xp.where(amax > 0, e - 1 - emax, xp.full_like(e, -127))
    exponent = xp.clip(exponent, -127, 127)
    implicit = 0 if scheme.kind == "float" else -(scheme.bits - 2)
    return _xp.ldexp(xp, xp.ones_like(amax), exponent + implicit)


def candidate_scales(xp, lo0, hi0, scheme: QuantScheme, ratios: int, tensor_scale=None):
    """(ratios, scales, zero points, minima) of the grid search: column k keeps ratio r_k of
    each row's range, from the full range down (so that ties keep the wider range)."""
    r = xp.asarray(np.arange(ratios, 0, -1) / ratios, device=_xp.device(lo0))
    lo = lo0[:, None] * r[None, :]
    hi = hi0[:, None] * r[None, :]
    flat = scales(xp, xp.reshape(lo, (-1,)), xp.reshape(hi, (-1,)), scheme, tensor_scale)

    def shaped(a):
        return None if a is None else xp.reshape(a, lo.shape)

    return r, shaped(flat.scale), shaped(flat.zero_point), shaped(flat.minimum)


# -- rows to codes and back -----------------------------------------------------------------------
def _col(xp, a):
    """Per-row parameters as a float64 column (no copy when they are float64 already)."""
    return xp.astype(a, xp.float64, copy=False)[:, None]


def divisors(xp, scale):
    """The scales to divide by: inf for a dead group (s = 0), so that its quotients are 0."""
    s = xp.astype(scale, xp.float64, copy=False)
    return xp.where(s > 0, s, xp.full_like(s, float("inf")))


def quotients(xp, rows, scale, minimum):
    """(x - minimum) / s per element in float64, NaN as 0; a dead group (s = 0) gives 0.
    float32 rows meet float64 scales, so the division itself is float64 (no separate
    widening pass)."""
    s = _col(xp, divisors(xp, scale))
    x = rows if rows.dtype in (xp.float32, xp.float64) else xp.astype(rows, xp.float64)
    if minimum is not None:
        x = x - _col(xp, minimum)
    return _xp.zero_nan(xp, x / s)


def _integers(xp, v, scheme: QuantScheme, u):
    if scheme.rounding is Rounding.STOCHASTIC:
        low = xp.floor(v)
        return low + xp.astype(u < v - low, low.dtype)
    return xp.round(v)


def quantize_rows(
    xp,
    rows,
    scale,
    zero_point,
    minimum,
    scheme: QuantScheme,
    u=None,
):
    """Codes of each row under its scale (int64 for int targets and float grids, uint8 for the
    codebook). NaN gives the code of zero and infinities clip."""
    v = quotients(xp, rows, scale, minimum)
    if scheme.kind == "float":
        mode = "stochastic" if scheme.rounding is Rounding.STOCHASTIC else "nearest-even"
        fmt = cast(FloatFormat, scheme.element_format)  # a float grid's
        r, _ = round_float(xp, v, fmt, mode, u)
        return float_codes(xp, r, fmt)
    if scheme.kind == "codebook":
        return _nearest(xp, v, scheme, u)
    q = _integers(xp, v, scheme, u)
    if zero_point is not None:
        q = q + _col(xp, zero_point)
    q = xp.clip(q, float(scheme.qmin), float(scheme.qmax))
    return xp.astype(q, xp.int64)


def int_rows_into(xp, rows, params, scheme: QuantScheme, buf, out, finite=False, fake=False):
    """The int grid's codes (``fake=False``) or fake-quantized values (``fake=True``) of a chunk
    of rows, computed in place in the float64 buffer ``buf`` and written into ``out`` (cast
    there): the same numbers as ``quantize_rows`` and ``dequantize_rows`` after it, for
    nearest-even rounding.

    params: float64 columns for these rows: ``divisor`` (the scale, inf for a dead group),
    ``scale``, and ``zero`` and ``minimum`` (or None).
    """
    ops = _xp.out_ops(xp)
    if params["minimum"] is not None:
        ops.subtract(rows, params["minimum"], out=buf)
        ops.divide(buf, params["divisor"], out=buf)
    else:
        ops.divide(rows, params["divisor"], out=buf)
    if not finite:
        ops.zero_nan(buf)
    ops.rint(buf, out=buf)
    ops.add(buf, 0.0, out=buf)  # -0 rounds to the code 0, whose value is +0
    zero = params["zero"]
    if not fake:
        if zero is not None:
            ops.add(buf, zero, out=buf)
        ops.clip(buf, float(scheme.qmin), float(scheme.qmax), out=buf)
        out[...] = buf
        return
    if zero is None:
        ops.clip(buf, float(scheme.qmin), float(scheme.qmax), out=buf)
    else:
        ops.clip(buf, scheme.qmin - zero, scheme.qmax - zero, out=buf)
    if params["minimum"] is None:
        ops.multiply(buf, params["scale"], out=out)
        return
    ops.multiply(buf, params["scale"], out=buf)
    ops.add(buf, params["minimum"], out=buf)
    out[...] = buf


def dequantize_rows(xp, codes, scale, zero_point, minimum, scheme: QuantScheme):
    """Values of codes under each row's scale, in float64."""
    s = xp.astype(scale, xp.float64)[:, None]
    if scheme.kind == "int":
        q = xp.astype(codes, xp.float64)
        if zero_point is not None:
            q = q - xp.astype(zero_point, xp.float64)[:, None]
        q = q * s
        if minimum is not None:
            q = q + xp.astype(minimum, xp.float64)[:, None]
        return q
    table = _xp.asarray_like(xp, grid_table(scheme), codes, xp.float64)
    return _xp.take(xp, table, codes) * s


def grid_table(scheme: QuantScheme) -> np.ndarray:
    """The value of every code of a float or codebook target, in code order (numpy)."""
    if scheme.kind == "codebook":
        return np.asarray(scheme.codebook)
    table = np.array(decode_table(scheme.element_format))
    return np.where(np.isfinite(table), table, 0.0)


def _nearest(xp, v, scheme: QuantScheme, u):
    """Index of the nearest codebook entry (a tie goes to the lower); stochastic: one of the
    two neighbours, the upper with probability proportional to the distance from the lower."""
    book = np.asarray(scheme.codebook)
    top = len(book) - 1
    v = xp.clip(v, float(book[0]), float(book[-1]))
    if scheme.rounding is Rounding.NEAREST_EVEN:
        mids = _xp.asarray_like(xp, (book[1:] + book[:-1]) / 2, v, xp.float64)
        return _searchsorted(xp, mids, v)
    values = _xp.asarray_like(xp, book, v, xp.float64)
    upper = xp.clip(_searchsorted(xp, values, v, xp.int64), 1, top)
    lower = upper - 1
    lo_v, hi_v = _xp.take(xp, values, lower), _xp.take(xp, values, upper)
    p = (v - lo_v) / (hi_v - lo_v)
    return xp.astype(xp.where(u < p, upper, lower), xp.uint8)


def _searchsorted(xp, edges, v, dtype=None):
    flat = xp.searchsorted(edges, xp.reshape(v, (-1,)), side="left")
    return xp.astype(xp.reshape(flat, v.shape), dtype or xp.uint8)


def clip_bounds(qparams):
    """Per-group bounds beyond which an element is clipped (scale layout): the grid's first and
    last level, each pushed out by half of the gap next to it. The one definition of
    "clipped", shared by the error report, the grid figure and the clipped straight-through
    estimator."""
    scheme = qparams.scheme
    s = qparams.effective_scale
    xp = _xp.namespace(s)
    if scheme.kind == "int":
        lo_code, hi_code = scheme.qmin - 0.5, scheme.qmax + 0.5
        if qparams.zero_point is not None:
            z = xp.astype(qparams.zero_point, xp.float64)
            lo, hi = (lo_code - z) * s, (hi_code - z) * s
        else:
            lo, hi = lo_code * s, hi_code * s
        if qparams.minimum is not None:
            lo, hi = lo + qparams.minimum, hi + qparams.minimum
        return xp.minimum(lo, hi), xp.maximum(lo, hi)  # a GGUF scale may be negative
    v = grid_values(scheme)
    lo_level = float(v[0] - (v[1] - v[0]) / 2)
    hi_level = float(v[-1] + (v[-1] - v[-2]) / 2)
    return lo_level * s, hi_level * s


def grid_values(scheme: QuantScheme) -> np.ndarray:
    """Every value of the unscaled grid, ascending (int codes minus zero point excluded)."""
    if scheme.kind == "codebook":
        return np.asarray(scheme.codebook)
    if scheme.kind == "int":
        return np.arange(scheme.qmin, scheme.qmax + 1, dtype=np.float64)
    fmt = cast(FloatFormat, scheme.element_format)  # a float grid's
    values = decode(np.arange(fmt.num_codes, dtype=fmt.code_dtype), fmt)
    return np.unique(values[np.isfinite(values)])
