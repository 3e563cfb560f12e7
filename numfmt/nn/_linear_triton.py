"""A Triton kernel for a linear layer whose weight is held as codes, on CUDA: the device twin
of ``_linear_jit.linear8`` and ``linear4``; imported only by ``numfmt.nn.packed``.

The weight is ``w[n, k] = (q[n, k] - z[n, g]) * s[n, g] + m[n, g]`` (an int grid; z and m
where the scheme has them) or ``lv[q[n, k]] * s[n, g]`` (a float or codebook grid's levels),
``g = k // GROUP``. Codes of 8 bits are a byte each; 4-bit codes two to a byte, the first in
the low nibble. As on the host, each group's sum of ``x * (q - z)`` (or ``x * lv[q]``) is
accumulated in float32 and scaled once, and a minimum adds ``m`` times the group's sum of x:
the result differs from multiplying by the decoded weight only in the order and rounding of
float32 additions (the tests bound it). A program computes ``BLOCK_N`` outputs for every row
of x (at most a few: the tokens of a generation step), reading each code once.
"""

import triton
import triton.language as tl


@triton.jit
def _nibbles(b, k, SIGNED: tl.constexpr):
    """Code k of the packed row, from its byte b (int32 of the byte, 0 .. 255): the low
    nibble for even k, the high one for odd, sign-extended when SIGNED."""
    if SIGNED:
        low = (b << 28) >> 28  # int32 shifts: arithmetic, so the nibble's sign extends
        high = (b << 24) >> 28
    else:
        low = b & 15
        high = (b >> 4) & 15
    return tl.where((k % 2) == 0, low, high)


@triton.jit
def linear_kernel(
    x_ptr, q_ptr, lv_ptr, s_ptr, z_ptr, m_ptr, b_ptr, out_ptr,  # x (M, K) float32; out (M, N)
    M, N, K, OUTER,  # OUTER: a tensor scale (NVFP4), else 1
    G: tl.constexpr, GROUP: tl.constexpr, BITS: tl.constexpr, SIGNED: tl.constexpr,
    TABLE: tl.constexpr, ZERO: tl.constexpr, MIN: tl.constexpr, SCALED: tl.constexpr,
    BIAS: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):  # fmt: skip
    """out[i, n] = sum over groups g of s[n, g] * sum_k x[i, k] (q[n, k] - z[n, g])
    (+ m[n, g] * sum_k x[i, k]), times OUTER where SCALED, plus b[n] in float32 where BIAS
    (as the host adds it, after the scaling); q (N, K) bytes, or (N, K / 2)
    packed nibbles (BITS 4); s, z, m (N, G). G and GROUP are compile-time constants (a
    model has a few shapes; Triton's interpreter loops over constants only)."""
    n = tl.program_id(0).to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N).to(tl.int64)
    n_ok = n < N
    i = tl.arange(0, BLOCK_M)
    i_ok = i < M
    row_bytes = K if BITS == 8 else K // 2
    acc = tl.zeros((BLOCK_M, BLOCK_N), tl.float32)
    for g in range(0, G):
        # running products per lane, summed across lanes once a group (not at every block)
        lanes = tl.zeros((BLOCK_M, BLOCK_N, BLOCK_K), tl.float32)
        x_lanes = tl.zeros((BLOCK_M, BLOCK_K), tl.float32)
        if ZERO:
            z = tl.load(z_ptr + n * G + g, mask=n_ok, other=0)[:, None]
        for k0 in range(0, GROUP, BLOCK_K):
            kk = k0 + tl.arange(0, BLOCK_K)
            k = g * GROUP + kk
            k_ok = (kk < GROUP) & (k < K)
            x = tl.load(
                x_ptr + i[:, None] * K + k[None, :], mask=i_ok[:, None] & k_ok[None, :], other=0.0
            )
            w_ok = n_ok[:, None] & k_ok[None, :]
            if BITS == 8:
                q = tl.load(q_ptr + n[:, None] * row_bytes + k[None, :], mask=w_ok, other=0)
                q = q.to(tl.int32)  # (int8 codes sign-extend)
            else:
                b = tl.load(q_ptr + n[:, None] * row_bytes + (k // 2)[None, :], mask=w_ok, other=0)
                q = _nibbles(b.to(tl.int32) & 255, k[None, :], SIGNED)
            if TABLE:
                w = tl.load(lv_ptr + (q & 255), mask=w_ok, other=0.0)
            elif ZERO:
                w = (q - z).to(tl.float32)
            else:
                w = q.to(tl.float32)
            lanes += x[:, None, :] * w[None, :, :]
            if MIN:
                x_lanes += x
        s = tl.load(s_ptr + n * G + g, mask=n_ok, other=0.0)
        acc += tl.sum(lanes, axis=2) * s[None, :]
        if MIN:
            m = tl.load(m_ptr + n * G + g, mask=n_ok, other=0.0)
            acc += m[None, :] * tl.sum(x_lanes, axis=1)[:, None]
    if SCALED:
        acc = acc * OUTER
    if BIAS:
        acc += tl.load(b_ptr + n, mask=n_ok, other=0.0).to(tl.float32)[None, :]
    tl.store(out_ptr + i[:, None] * N + n[None, :], acc, mask=i_ok[:, None] & n_ok[None, :])
