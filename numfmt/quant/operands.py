"""Matrix operands in a block format: element values and their scales, ready for a matmul.

``block_operands(a, b, "mxfp8")`` quantizes the two operands of a @ b the way a scaled
matrix multiply takes them, blocks running along K (the dimension the product sums over),
and gives back ``(qa, qb, (scale_a, scale_b))``: the element values (float64, each a value
of the element format) and one scale per block, so that ``qa * scale_a`` (each block's scale
repeated over it) is a's quantized value. ``numfmt.arith.matmul(qa, qb, scales=...)`` then
computes the product as hardware does, the scales entering exactly (powers of two) or
multiplying each block's partial sum.

=========  ========================================================================
mxfp8      OCP MX: blocks of 32 along K in both operands, E4M3 elements, E8M0 scales
           (powers of two); ``mxfp8_e5m2``, ``mxfp6_e2m3``, ``mxfp6_e3m2``, ``mxfp4``
           likewise
nvfp4      NVIDIA's: blocks of 16, E2M1 elements, E4M3 scales times a float32 scale
           of the whole tensor
deepseek   DeepSeek-V3's (technical report, section 3.3.2): a in 1 x 128 tiles (a
           token's 128 channels), b in 128 x 128 blocks, E4M3 elements, float32 scales
           (the tile's largest magnitude over 448)
row        a scale per row of a (per token) and per column of b (per output channel),
           E4M3 elements: the "rowwise" scaling of torchao's float8 training
tensor     one float32 scale for each operand, E4M3 elements
=========  ========================================================================

Where K is not a whole number of blocks, both operands are padded with zeros along K to the
next multiple (as a GEMM library pads): the product is unchanged, and qa, qb come back with
the padded K. The scale arrays come back at full resolution along the other dimension:
scale_a is (M, K/B) and scale_b (K/B, N), a 128 x 128 block's scale repeated over its 128
columns, so that columns left over at the edge (N not a multiple of 128) keep their own
block. The schemes' rounding is quant's own (``choose_qparams`` and ``quantize``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from numfmt.errors import NumfmtError
from numfmt.formats.encode import as_real_array
from numfmt.quant.granularity import PerGroup
from numfmt.quant.qparams import choose_qparams, dequantize, quantize
from numfmt.quant.schemes import PRESET_ALIASES, PRESETS, QuantScheme

#: The element format of the schemes that are not a quant preset.
_E4M3 = "float8_e4m3fn"
_OWN = ("deepseek", "row", "tensor")
_MX = tuple(n for n, s in PRESETS.items() if s.scale_rule in ("mx", "nvfp4"))
BLOCK_SCHEMES = (*_MX, *_OWN)


def block_operands(a: Any, b: Any, scheme: str) -> tuple[np.ndarray, np.ndarray, tuple]:
    """(qa, qb, (scale_a, scale_b)) of a (M, K) and b (K, N) in a block scheme (the module's
    table): element values and scales for ``numfmt.arith.matmul(qa, qb, scales=...)``.

    Example:
        >>> import numpy as np
        >>> a = np.array([[1.0, 3.0] * 16]); b = np.full((32, 1), 0.1)
        >>> qa, qb, (sa, sb) = block_operands(a, b, "mxfp8")
        >>> sa.shape, sb.shape, float(sa[0, 0])  # one block of 32; 3 = 1.5 x 2^1
        ((1, 1), (1, 1), 0.0078125)
        >>> float((qa * sa).max()), float((qb * sb)[0, 0])  # b's 0.1 on E4M3's grid
        (3.0, 0.1015625)
    """
    x, y = _matrix(a, "a"), _matrix(b, "b")
    if x.shape[1] != y.shape[0]:
        raise NumfmtError(
            f"shapes {x.shape} and {y.shape} do not multiply: a's K ({x.shape[1]}) is not "
            f"b's ({y.shape[0]})"
        )
    qa, sa = block_operand(x, scheme, "a")
    qb, sb = block_operand(y, scheme, "b")
    return qa, qb, (sa, sb)


def block_operand(x: Any, scheme: str, role: str = "a") -> tuple[np.ndarray, np.ndarray]:
    """One operand of a @ b in a block scheme: role ``a`` for x (M, K), giving (values,
    scale (M, K/B)); role ``b`` for x (K, N), giving (values, scale (K/B, N)). A layer's
    weight is quantized once this way, its input at each call."""
    name = _scheme_name(scheme)
    if role not in ("a", "b"):
        raise NumfmtError(f"role is 'a' (M, K) or 'b' (K, N), not {role!r}")
    v = _matrix(x, role)
    rows = v if role == "a" else v.T  # K along the last axis
    block = _block(name, rows.shape[1])
    rows = _pad(rows, block)
    if name == "deepseek" and role == "b":
        values, scale = _tiles(rows, block)
    elif name == "tensor":  # the whole operand one group
        values, scale = _groups(rows.reshape(1, -1), _scheme(name, rows.size))
        values, scale = values.reshape(rows.shape), np.full((rows.shape[0], 1), scale[0, 0])
    else:
        values, scale = _groups(rows, _scheme(name, block))
    if role == "a":
        return values, scale
    return np.ascontiguousarray(values.T), np.ascontiguousarray(scale.T)


def _scheme_name(scheme: Any) -> str:
    name = str(scheme).strip().lower()
    name = PRESET_ALIASES.get(name, name)
    if name not in BLOCK_SCHEMES:
        raise NumfmtError(
            f"unknown block scheme '{scheme}'; choose one of {', '.join(BLOCK_SCHEMES)}"
        )
    return name


def _matrix(x: Any, role: str) -> np.ndarray:
    v = np.asarray(as_real_array(x), dtype=np.float64)
    if v.ndim != 2:
        raise NumfmtError(f"{role} is a matrix here, not of shape {v.shape}")
    if v.size == 0:
        raise NumfmtError(f"{role} is empty (shape {v.shape})")
    if not np.isfinite(v).all():
        raise NumfmtError(f"{role} holds NaN or infinity; a block scale needs finite values")
    return v


def _block(name: str, k: int) -> int:
    if name in ("row", "tensor"):
        return k
    if name == "deepseek":
        return 128
    granularity = PRESETS[name].granularity
    assert isinstance(granularity, PerGroup)
    return granularity.size


def _pad(rows: np.ndarray, block: int) -> np.ndarray:
    extra = -rows.shape[1] % block
    return np.pad(rows, ((0, 0), (0, extra))) if extra else rows


def _scheme(name: str, block: int) -> QuantScheme:
    if name in PRESETS:
        return PRESETS[name]
    return QuantScheme(target=_E4M3, granularity=PerGroup(block))


def _groups(rows: np.ndarray, s: QuantScheme) -> tuple[np.ndarray, np.ndarray]:
    """Element values and scales of rows quantized in groups along their last axis."""
    qp = choose_qparams(rows, s)
    deq = dequantize(quantize(rows, qp), qp)
    return _split(deq, np.asarray(qp.effective_scale, dtype=np.float64))


def _tiles(rows: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """b's 128 x 128 blocks (rows here are b's columns, K along the last axis): each block
    one group of quant's, the scales repeated over the block's columns."""
    n, k = rows.shape
    extra = -n % block
    padded = np.pad(rows, ((0, extra), (0, 0))) if extra else rows
    tiles = padded.reshape(-1, block, k // block, block).transpose(0, 2, 1, 3)
    flat = tiles.reshape(-1, block * block)
    qp = choose_qparams(flat, QuantScheme(target=_E4M3, granularity=PerGroup(block * block)))
    deq = dequantize(quantize(flat, qp), qp)
    scale = np.asarray(qp.effective_scale, dtype=np.float64).reshape(-1, k // block)
    deq = deq.reshape(tiles.shape).transpose(0, 2, 1, 3).reshape(padded.shape)[:n]
    return _split(deq, np.repeat(scale, block, axis=0)[:n])


def _split(deq: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(element values, scales) from dequantized values and their blocks' scales: a block of
    zeros (scale 0) gets the scale 1, its elements being zeros under any. The division is
    exact: each value is an element times its scale, both few-bit numbers."""
    scale = np.where(scale > 0, scale, 1.0)
    per = np.repeat(scale, deq.shape[1] // scale.shape[1], axis=1)
    return deq / per, np.ascontiguousarray(scale)
