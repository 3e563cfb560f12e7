"""llama.cpp's GGUF block formats: the reference quantizers and their bytes.

Every type cuts each row into blocks of 32 and stores a float16 scale ``d`` per block (and, for
the ``_1`` types, a float16 minimum ``m``):

=====  ============================  =====================================  ===============
type   codes                         value                                  bytes per block
=====  ============================  =====================================  ===============
Q8_0   round(x / d), half away       d * q, q in -127 .. 127                2 + 32
Q4_0   trunc(x / d + 8.5) - 8        d * q, q in -8 .. 7; d = max / -8,     2 + 16
                                     max the value of largest magnitude
Q5_0   trunc(x / d + 16.5) - 16      as Q4_0 with 5 bits; d = max / -16     2 + 4 + 16
Q4_1   trunc((x - min) / d + 0.5)    d * q + m, q in 0 .. 15;               2 + 2 + 16
                                     d = (max - min) / 15, m = min
Q5_1   as Q4_1 with 5 bits           d = (max - min) / 31                   2 + 2 + 4 + 16
=====  ============================  =====================================  ===============

The codes are computed as the reference computes them (``gguf.quants`` in Python and
``quantize_row_*_ref`` in ggml): in float32, multiplying by the float32 reciprocal of the
*unrounded* float32 scale, which is only then rounded to float16 for storage. So a block's
codes use ``code_scale`` while its values use the stored ``scale``; numfmt keeps both.
The bytes themselves are written and read by ``gguf_bytes``.
"""

from __future__ import annotations

import numpy as np

from numfmt.quant.grid import Scales, round_float
from numfmt.quant.schemes import Mapping, QuantScheme

BLOCK = 32

#: type -> (GGML type number, bytes per block)
TYPES = {"q4_0": (2, 18), "q4_1": (3, 20), "q5_0": (6, 22), "q5_1": (7, 24), "q8_0": (8, 34)}


def _float16(xp, v):
    """float32 values rounded to float16 (nearest-even), as float64, and saturation flags."""
    from numfmt.formats import get_format

    return round_float(xp, xp.astype(v, xp.float64), get_format("float16"), "nearest-even")


def choose(xp, rows, scheme: QuantScheme):
    """(lo, hi, Scales) of one block of 32-element groups, as the reference chooses them."""
    x = xp.astype(rows, xp.float32)
    lo = xp.astype(xp.min(x, axis=1), xp.float64)
    hi = xp.astype(xp.max(x, axis=1), xp.float64)
    if scheme.mapping is Mapping.FLOAT_MIN:
        d = (xp.max(x, axis=1) - xp.min(x, axis=1)) / np.float32(scheme.qmax)
        d = xp.astype(d, xp.float32)
        scale, over = _float16(xp, d)
        minimum, m_over = _float16(xp, xp.min(x, axis=1))
        return (
            lo,
            hi,
            Scales(
                scale,
                minimum=minimum,
                code_scale=xp.astype(d, xp.float64),
                code_minimum=lo,
                saturated=over | m_over,
            ),
        )
    if scheme.restricted:  # Q8_0: absmax / 127
        d = xp.astype(xp.max(xp.abs(x), axis=1) / np.float32(127), xp.float32)
    else:  # Q4_0, Q5_0: the value of largest magnitude (the first one), over -2^(b-1)
        first = xp.argmax(xp.abs(x), axis=1)
        biggest = xp.take_along_axis(x, first[:, None], axis=1)[:, 0]
        d = xp.astype(biggest / np.float32(scheme.qmin), xp.float32)
    scale, over = _float16(xp, d)
    return lo, hi, Scales(scale, code_scale=xp.astype(d, xp.float64), saturated=over)


def quantize_rows(xp, rows, code_scale, code_minimum, scheme: QuantScheme):
    """Codes (int64) of one block, in the reference's float32 arithmetic."""
    x = xp.astype(rows, xp.float32)
    d = xp.astype(code_scale, xp.float32)[:, None]
    inverse = xp.where(d == 0, xp.zeros_like(d), 1 / xp.where(d == 0, xp.ones_like(d), d))
    if scheme.mapping is Mapping.FLOAT_MIN:
        v = (x - xp.astype(code_minimum, xp.float32)[:, None]) * inverse + np.float32(0.5)
        q = xp.clip(xp.trunc(v), 0, scheme.qmax)
    elif scheme.restricted:  # Q8_0 rounds half away from zero
        v = x * inverse
        a = xp.abs(v)
        whole = xp.floor(a)
        q = xp.sign(v) * (whole + xp.floor(2 * (a - whole)))
    else:
        offset = -scheme.qmin
        v = x * inverse + np.float32(offset + 0.5)
        q = xp.clip(xp.trunc(v), 0, 2 * offset - 1) - offset
    q = xp.where(xp.isnan(q), xp.zeros_like(q), q)
    return xp.astype(q, xp.int64)
