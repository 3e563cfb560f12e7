"""Packing sub-byte codes into bytes, in the nibble orders users meet.

=============  ==================================================================
order          4-bit layout (byte k, low nibble / high nibble)
=============  ==================================================================
torchao        elements 2k / 2k+1: adjacent pairs, the first in the low nibble
               (torchao's uint4 packing, and ONNX's INT4)
bitsandbytes   elements 2k+1 / 2k: adjacent pairs, the first in the high nibble
ggml_q4_0      in each block of 32: element j / element j+16, for j = 0..15
               (llama.cpp's Q4_0 and Q4_1 blocks)
=============  ==================================================================

2-bit codes pack four to a byte, the first in the lowest bits (``torchao``) or the highest
(``bitsandbytes``). 6-bit codes (FP6) pack as a little-endian bit stream: four codes in three
bytes, the first in the lowest bits. 8- and 16-bit codes are stored as they are. A last byte
that is not full is padded with zero bits.
"""

from __future__ import annotations

import numpy as np

from numfmt.errors import NumfmtError

ORDERS = ("torchao", "bitsandbytes", "ggml_q4_0")


def pack(codes: np.ndarray, bits: int, order: str = "torchao") -> np.ndarray:
    """Pack the low ``bits`` of each code (flattened, C order) into a uint8 array.

    Example:
        >>> pack(np.array([1, 2, 3]), 4).tolist()
        [33, 3]
    """
    c = (np.asarray(codes).reshape(-1).astype(np.int64) & ((1 << bits) - 1)).astype(np.uint8)
    _check(bits, order, c.size)
    if bits == 8:
        return c
    if bits == 16:
        return (np.asarray(codes).reshape(-1).astype(np.uint16)).view(np.uint8)
    if bits == 6:
        return _pack_bitstream(c, 6)
    per_byte = 8 // bits
    if order == "ggml_q4_0":
        blocks = c.reshape(-1, 32)
        return (blocks[:, :16] | (blocks[:, 16:] << 4)).reshape(-1)
    padded = np.zeros(-(-c.size // per_byte) * per_byte, dtype=np.uint8)
    padded[: c.size] = c
    lanes = padded.reshape(-1, per_byte)
    if order == "bitsandbytes":
        lanes = lanes[:, ::-1]
    out = np.zeros(lanes.shape[0], dtype=np.uint8)
    for i in range(per_byte):
        out |= lanes[:, i] << (bits * i)
    return out


def unpack(data: np.ndarray, bits: int, count: int, order: str = "torchao") -> np.ndarray:
    """The inverse of :func:`pack`: ``count`` codes of ``bits`` bits, as uint8 (uint16)."""
    d = np.asarray(data, dtype=np.uint8).reshape(-1)
    _check(bits, order, count)
    if bits == 8:
        return d[:count].copy()
    if bits == 16:
        return d.view(np.uint16)[:count].copy()
    if bits == 6:
        return _unpack_bitstream(d, 6, count)
    per_byte = 8 // bits
    mask = (1 << bits) - 1
    if order == "ggml_q4_0":
        blocks = d.reshape(-1, 16)
        return np.concatenate([blocks & 0xF, blocks >> 4], axis=1).reshape(-1)[:count]
    lanes = np.stack([(d >> (bits * i)) & mask for i in range(per_byte)], axis=1)
    if order == "bitsandbytes":
        lanes = lanes[:, ::-1]
    return lanes.reshape(-1)[:count].astype(np.uint8)


def to_signed(codes: np.ndarray, bits: int) -> np.ndarray:
    """Unpacked two's-complement codes back to signed integers (int8)."""
    c = np.asarray(codes).astype(np.int16)
    return np.where(c >= 1 << (bits - 1), c - (1 << bits), c).astype(np.int8)


def packed_size(count: int, bits: int) -> int:
    """Bytes that ``count`` codes of ``bits`` bits take packed."""
    return -(-count * bits // 8)


def _check(bits: int, order: str, count: int) -> None:
    if bits not in (2, 4, 6, 8, 16):
        raise NumfmtError(f"packing handles 2, 4, 6, 8 and 16-bit codes, not {bits}-bit")
    if order not in ORDERS:
        raise NumfmtError(f"unknown nibble order '{order}'; use {', '.join(ORDERS)}")
    if order == "ggml_q4_0" and (bits != 4 or count % 32):
        raise NumfmtError("the ggml_q4_0 order packs 4-bit codes in blocks of 32 (pad the tensor)")


def _pack_bitstream(c: np.ndarray, bits: int) -> np.ndarray:
    bitplanes = ((c[:, None] >> np.arange(bits, dtype=np.uint8)) & 1).astype(np.uint8)
    stream = bitplanes.reshape(-1)
    return np.packbits(stream, bitorder="little")


def _unpack_bitstream(d: np.ndarray, bits: int, count: int) -> np.ndarray:
    stream = np.unpackbits(d, bitorder="little")[: count * bits].reshape(count, bits)
    return (stream << np.arange(bits, dtype=np.uint8)).sum(axis=1).astype(np.uint8)
