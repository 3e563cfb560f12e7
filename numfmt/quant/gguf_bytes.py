"""GGUF's bytes: a QuantizedTensor of a GGUF scheme to llama.cpp's block layout and back.

=====  ==================================================  ==========
type   one block of 32 elements                            bytes
=====  ==================================================  ==========
Q8_0   float16 d, 32 int8 codes                            2 + 32
Q4_0   float16 d, 16 bytes of nibbles                      2 + 16
Q5_0   float16 d, 32-bit qh (the fifth bits), 16 bytes     2 + 4 + 16
Q4_1   float16 d, float16 m, 16 bytes of nibbles           2 + 2 + 16
Q5_1   float16 d, float16 m, qh, 16 bytes                  2 + 2 + 4 + 16
=====  ==================================================  ==========

4-bit (low) codes pair element j with element j + 16 in one byte (low / high nibble), stored
as q + 8 (Q4_0) or q + 16 (Q5_0) for the symmetric types; ``qh`` holds bit j for element j,
little-endian. The bytes are those ``gguf.quants`` writes (the tests compare them).
"""

from __future__ import annotations

import numpy as np

from numfmt.errors import NumfmtError
from numfmt.quant import _xp
from numfmt.quant.gguf import BLOCK, TYPES
from numfmt.quant.granularity import Grouping
from numfmt.quant.qparams import QParams, code_dtype
from numfmt.quant.schemes import PRESETS, Mapping
from numfmt.quant.tensor import QuantizedTensor


def type_of(scheme) -> str:
    if scheme.preset not in TYPES:
        raise NumfmtError(
            f"GGUF blocks hold the schemes {', '.join(TYPES)}; {scheme} is not one of them"
        )
    return scheme.preset


def to_bytes(qt) -> np.ndarray:
    """A QuantizedTensor of a GGUF scheme as GGUF's bytes: uint8 of shape
    (*leading, row_length / 32 * bytes_per_block), byte for byte what ``gguf.quants``
    writes."""
    kind = type_of(qt.scheme)
    shape = qt.shape
    if not shape or shape[-1] % BLOCK:
        raise NumfmtError(f"GGUF blocks need rows of a multiple of {BLOCK} elements, not {shape}")
    codes = _xp.to_numpy(qt.codes).astype(np.int64).reshape(-1, BLOCK)
    d = _half_bytes(qt.qparams.scale)
    parts = [d]
    if qt.qparams.minimum is not None:
        parts.append(_half_bytes(qt.qparams.minimum))
    if kind == "q8_0":
        parts.append(codes.astype(np.int8).view(np.uint8))
    else:
        nibbles = (codes - qt.scheme.qmin).astype(np.uint8)  # 0 .. 2^b - 1
        if kind.startswith("q5"):
            high = ((nibbles >> 4) & 1).astype(np.uint32) << np.arange(BLOCK, dtype=np.uint32)
            qh = np.bitwise_or.reduce(high, axis=1).astype("<u4")
            parts.append(qh.view(np.uint8).reshape(-1, 4))
        low = nibbles & 0x0F
        parts.append(low[:, :16] | (low[:, 16:] << 4))
    blocks = np.concatenate(parts, axis=1)
    return blocks.reshape(*shape[:-1], -1)


def _half_bytes(values) -> np.ndarray:
    return _xp.to_numpy(values).astype(np.float16).reshape(-1, 1).view(np.uint8)


def from_bytes(data, kind: str, shape: tuple[int, ...]):
    """The QuantizedTensor that GGUF bytes of type ``kind`` hold, for a tensor of ``shape``."""
    if kind not in TYPES:
        raise NumfmtError(f"unknown GGUF block type '{kind}'; numfmt reads {', '.join(TYPES)}")
    scheme = PRESETS[kind]
    size = TYPES[kind][1]
    shape = tuple(int(n) for n in shape)
    count = int(np.prod(shape))
    raw = np.asarray(data, dtype=np.uint8).reshape(-1)
    if not shape or shape[-1] % BLOCK or raw.size != count // BLOCK * size:
        raise NumfmtError(
            f"{raw.size} bytes are not a {kind} tensor of shape {shape} "
            f"({size} bytes per block of {BLOCK})"
        )
    blocks = raw.reshape(-1, size)
    d = blocks[:, :2].copy().view(np.float16).astype(np.float64)[:, 0]
    at = 2
    minimum = None
    if scheme.mapping is Mapping.FLOAT_MIN:
        minimum = blocks[:, 2:4].copy().view(np.float16).astype(np.float64)[:, 0]
        at = 4
    if kind == "q8_0":
        codes = blocks[:, at:].view(np.int8).astype(np.int64)
    else:
        qh = None
        if kind.startswith("q5"):
            qh = blocks[:, at : at + 4].copy().view("<u4")[:, 0]
            at += 4
        qs = blocks[:, at:]
        nibbles = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int64)
        if qh is not None:
            bits = (qh[:, None] >> np.arange(BLOCK, dtype=np.uint32)) & 1
            nibbles |= bits.astype(np.int64) << 4
        codes = nibbles + scheme.qmin
    grouping = Grouping(shape, scheme.granularity)
    scale = d.reshape(grouping.scale_shape)
    qparams = QParams(
        scheme=scheme,
        grouping=grouping,
        scale=scale,
        zero_point=None,
        tensor_scale=None,
        lo=scale * 0,
        hi=scale * 0,
        minimum=None if minimum is None else minimum.reshape(grouping.scale_shape),
    )
    return QuantizedTensor(codes.reshape(shape).astype(code_dtype(scheme)), qparams)
