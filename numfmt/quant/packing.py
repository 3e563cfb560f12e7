"""Packing codes into bytes, in the nibble orders users meet (numpy or torch, any device).

===========  ====================================================  ===========================
order        4-bit layout of byte k                                who packs this way
===========  ====================================================  ===========================
low_first    element 2k in the low nibble, 2k+1 in the high one    ONNX INT4/UINT4; a little-
                                                                   endian bit stream
high_first   element 2k in the high nibble, 2k+1 in the low one    torchao's ``pack_uint4``,
                                                                   bitsandbytes' 4-bit blocks
ggml         in each block of 32: element j in the low nibble,     llama.cpp's Q4_0 / Q4_1
             element j + 16 in the high one (j = 0 .. 15)
===========  ====================================================  ===========================

The libraries' names are aliases: ``onnx`` is ``low_first``; ``torchao`` and ``bitsandbytes``
are ``high_first``; ``ggml_q4_0`` is ``ggml``. 2-bit codes pack four to a byte, the first in
the lowest bits (``low_first``) or the highest (``high_first``, as torchao's uint2). 8-, 16-
and 32-bit codes are stored as they are (little-endian). Every other width (3, 5, 6, 7 bits,
9 to 31) packs as a little-endian bit stream: the first code in the lowest bits of the first
byte (FP6: four codes in three bytes). A last byte that is not full is padded with zero bits.
"""

from __future__ import annotations

import math

from numfmt.errors import NumfmtError
from numfmt.quant import _xp

ORDERS = ("low_first", "high_first", "ggml")
ALIASES = {
    "onnx": "low_first",
    "torchao": "high_first",
    "bitsandbytes": "high_first",
    "ggml_q4_0": "ggml",
}


def parse_order(order: str) -> str:
    """An order's name from its name or a library's (``torchao`` -> ``high_first``)."""
    name = ALIASES.get(str(order).lower(), str(order).lower())
    if name not in ORDERS:
        raise NumfmtError(
            f"unknown nibble order '{order}'; use {', '.join(ORDERS)} "
            f"(or a library: {', '.join(ALIASES)})"
        )
    return name


def pack(codes, bits: int, order: str = "low_first"):
    """Pack the low ``bits`` of each code (flattened, C order) into a uint8 array.

    Examples:
        >>> import numpy as np
        >>> pack(np.array([1, 2, 3]), 4).tolist()
        [33, 3]
    """
    codes = _array(codes)
    xp = _xp.namespace(codes)
    count = math.prod(codes.shape)
    order = _check(bits, order, count)
    flat = xp.reshape(codes, (-1,))
    if bits == 4:
        from numfmt.quant import _kernels

        fast = _kernels.pack_nibbles(flat, parse_order(order))
        if fast is not None:
            return fast
    if bits <= 8:  # work in bytes: a cast to uint8 keeps the low bits (two's complement)
        c = xp.astype(flat, xp.uint8) if flat.dtype != xp.uint8 else flat
        if bits < 8:
            c = c & ((1 << bits) - 1)
        if bits == 8:
            return c
        if order == "ggml":
            blocks = xp.reshape(c, (-1, 32))
            return xp.reshape(blocks[:, :16] | (blocks[:, 16:] << 4), (-1,))
        if bits in (2, 4):
            per_byte = 8 // bits
            lanes = _pad(xp, c, per_byte)
            if order == "high_first":  # the first element in the highest bits
                parts = [lanes[k::per_byte] << (bits * (per_byte - 1 - k)) for k in range(per_byte)]
            else:
                parts = [lanes[k::per_byte] << (bits * k) for k in range(per_byte)]
            out = parts[0]
            for part in parts[1:]:
                out = out | part
            return out
    c = xp.astype(flat, xp.int64) & ((1 << bits) - 1)
    if bits % 8 == 0:
        shifts = _arange(xp, 0, bits, 8, c)
        return xp.astype(xp.reshape((c[:, None] >> shifts[None, :]) & 0xFF, (-1,)), xp.uint8)
    planes = (c[:, None] >> _arange(xp, 0, bits, 1, c)[None, :]) & 1  # the bit stream
    stream = xp.reshape(_pad(xp, xp.reshape(planes, (-1,)), 8), (-1, 8))
    return xp.astype(xp.sum(stream << _arange(xp, 0, 8, 1, c)[None, :], axis=1), xp.uint8)


def unpack(data, bits: int, count: int, order: str = "low_first"):
    """The inverse of :func:`pack`: ``count`` codes of ``bits`` bits, unsigned, in the
    narrowest unsigned dtype (use :func:`to_signed` for two's-complement codes)."""
    data = _array(data)
    xp = _xp.namespace(data)
    order = _check(bits, order, count)
    d = xp.astype(xp.reshape(data, (-1,)), xp.int64)
    needed = packed_size(count, bits)
    if d.shape[0] < needed:
        raise NumfmtError(f"{d.shape[0]} bytes cannot hold {count} codes of {bits} bits")
    if bits % 8 == 0:
        per = bits // 8
        words = xp.reshape(d[: count * per], (count, per)) << _arange(xp, 0, bits, 8, d)[None, :]
        out = xp.sum(words, axis=1)
    elif order == "ggml":
        blocks = xp.reshape(d[:needed], (-1, 16))
        out = xp.reshape(xp.concat([blocks & 0xF, blocks >> 4], axis=1), (-1,))[:count]
    elif bits in (2, 4):
        lanes = (d[:, None] >> _arange(xp, 0, 8, bits, d)[None, :]) & ((1 << bits) - 1)
        if order == "high_first":
            lanes = xp.flip(lanes, axis=1)
        out = xp.reshape(lanes, (-1,))[:count]
    else:
        stream = xp.reshape((d[:, None] >> _arange(xp, 0, 8, 1, d)[None, :]) & 1, (-1,))
        planes = xp.reshape(stream[: count * bits], (count, bits))
        out = xp.sum(planes << _arange(xp, 0, bits, 1, d)[None, :], axis=1)
    return xp.astype(out, _xp.int_dtype(xp, bits, signed=False))


def to_signed(codes, bits: int):
    """Unpacked two's-complement codes back to signed integers (int8 .. int32)."""
    codes = _array(codes)
    xp = _xp.namespace(codes)
    c = xp.astype(codes, xp.int64)
    c = xp.where(c >= 1 << (bits - 1), c - (1 << bits), c)
    return xp.astype(c, _xp.int_dtype(xp, bits, signed=True))


def _array(a):
    if _xp.is_torch(a):
        return a
    import numpy as np

    return np.asarray(a)


def packed_size(count: int, bits: int) -> int:
    """Bytes that ``count`` codes of ``bits`` bits take packed."""
    return -(-count * bits // 8)


def _arange(xp, start, stop, step, like):
    return xp.arange(start, stop, step, dtype=xp.int64, device=_xp.device(like))


def _pad(xp, c, multiple: int):
    extra = -c.shape[0] % multiple
    if not extra:
        return c
    return xp.concat([c, xp.zeros((extra,), dtype=c.dtype, device=_xp.device(c))])


def _check(bits: int, order: str, count: int) -> str:
    if not 1 <= bits <= 32:
        raise NumfmtError(f"packing handles codes of 1 to 32 bits, not {bits}")
    order = parse_order(order)
    if order == "ggml" and (bits != 4 or count % 32):
        raise NumfmtError("the ggml order packs 4-bit codes in blocks of 32 (pad the tensor)")
    return order
