"""block_operands: the two operands of a scaled matmul, checked against the schemes' own
definitions (OCP MX's shared exponent, DeepSeek-V3's tile maxima over 448, E2M1's grid)
computed here with numpy, and against numfmt.arith.matmul's exact folding of powers of two."""

import math

import ml_dtypes
import numpy as np
import pytest

from numfmt.arith.matmul import matmul
from numfmt.errors import NumfmtError
from numfmt.quant import BLOCK_SCHEMES, block_operand, block_operands

RNG = np.random.default_rng(7)
A = RNG.standard_normal((6, 200)) * np.exp(RNG.uniform(-3, 3, (6, 1)))
B = RNG.standard_normal((200, 150))


def _expand(scale, k, axis):
    return np.repeat(scale, k // scale.shape[axis], axis=axis)


def _on_grid(values, dtype):
    return np.array_equal(values.astype(dtype).astype(np.float64), values)


@pytest.mark.parametrize("name", BLOCK_SCHEMES)
def test_each_scheme_gives_values_and_scales_whose_product_is_close(name):
    qa, qb, (sa, sb) = block_operands(A, B, name)
    k = qa.shape[1]
    assert qb.shape[0] == k and k >= 200 and sa.shape[1] == sb.shape[0]
    assert sa.shape[0] == 6 and sb.shape[1] == 150  # full resolution across M and N
    assert not qa[:, 200:].any() and not qb[200:].any()  # padding is zeros
    ra, rb = qa * _expand(sa, k, 1), qb * _expand(sb, k, 0)
    bits = {"mxfp4": 2, "nvfp4": 2, "mxfp6_e2m3": 4, "mxfp6_e3m2": 3, "mxint8": 7}.get(name, 3)
    for orig, back in ((A, ra[:, :200]), (B, rb[:200])):
        # no element moves by more than its block's largest magnitude times a few ulps
        assert np.all(np.abs(back - orig) <= np.abs(orig).max() * 2.0 ** (1 - bits))


def test_mx_scales_are_the_shared_exponent_of_the_ocp_specification():
    qa, qb, (sa, sb) = block_operands(A, B, "mxfp8")
    k = qa.shape[1]  # 224: 200 padded to blocks of 32
    assert k == 224 and sa.shape == (6, 7) and sb.shape == (7, 150)
    blocks = np.pad(A, ((0, 0), (0, 24))).reshape(6, 7, 32)
    amax = np.abs(blocks).max(axis=2)
    expected = 2.0 ** (np.floor(np.log2(amax)) - 8)  # E4M3's largest exponent is 8
    assert np.array_equal(sa, expected)
    assert _on_grid(qa, ml_dtypes.float8_e4m3fn) and _on_grid(qb, ml_dtypes.float8_e4m3fn)
    assert np.abs(qa).max() <= 448


def test_deepseek_tiles_scale_by_their_largest_magnitude_over_448():
    a = RNG.standard_normal((3, 256)) * 5
    b = RNG.standard_normal((256, 200))
    qa, qb, (sa, sb) = block_operands(a, b, "deepseek")
    assert sa.shape == (3, 2) and sb.shape == (2, 200)
    tile_a = np.abs(a.reshape(3, 2, 128)).max(axis=2)
    assert np.allclose(sa, tile_a / 448, rtol=2**-23)
    # b's 128 x 128 blocks: columns 0..127 share one scale per K block, 128..199 another
    for kb in range(2):
        for c0, c1 in ((0, 128), (128, 200)):
            amax = np.abs(b[kb * 128 : (kb + 1) * 128, c0:c1]).max()
            assert np.allclose(sb[kb, c0:c1], amax / 448, rtol=2**-23)
    assert _on_grid(qa, ml_dtypes.float8_e4m3fn) and _on_grid(qb, ml_dtypes.float8_e4m3fn)
    assert math.isclose(np.abs(qa).max(), 448)


def test_row_and_tensor_scales():
    qa, qb, (sa, sb) = block_operands(A, B, "row")
    assert qa.shape == (6, 200) and qb.shape == (200, 150)  # one block across K: no padding
    assert np.allclose(sa[:, 0], np.abs(A).max(axis=1) / 448, rtol=2**-23)
    assert np.allclose(sb[0], np.abs(B).max(axis=0) / 448, rtol=2**-23)
    _, _, (sa, sb) = block_operands(A, B, "tensor")
    assert np.allclose(sa, np.abs(A).max() / 448, rtol=2**-23) and len(np.unique(sb)) == 1


def test_nvfp4_values_sit_on_e2m1s_grid_and_scales_on_e4m3s_times_one_float():
    qa, _, (sa, _) = block_operands(A, B, "nvfp4")
    assert set(np.unique(np.abs(qa))) <= {0, 0.5, 1, 1.5, 2, 3, 4, 6}
    ratios = sa / sa.max()  # the E4M3 block scales, up to the tensor's one float32 scale
    e4m3 = ratios * 448
    assert np.allclose(e4m3.astype(ml_dtypes.float8_e4m3fn).astype(float), e4m3, rtol=2**-20)


def test_power_of_two_scales_enter_the_product_exactly_even_with_promotion():
    qa, qb, (sa, sb) = block_operands(A, B, "mxfp8")
    k = qa.shape[1]
    folded = matmul(qa * _expand(sa, k, 1), qb * _expand(sb, k, 0), model="fp32", inputs=None)
    scaled = matmul(qa, qb, scales=(sa, sb), model="fp32", inputs=None)
    assert np.array_equal(folded, scaled)
    # through a promoting fused model too (K = 224 is a multiple of its group of 32)
    p = {"model": "hopper-fp8", "promote_every": 64, "inputs": None}
    assert np.array_equal(
        matmul(qa, qb, scales=(sa, sb), **p),
        matmul(qa * _expand(sa, k, 1), qb * _expand(sb, k, 0), **p),
    )


def test_one_scale_across_k_multiplies_each_promoted_partial_sum():
    # row scales with a promotion every 32 terms: each partial sum times its row's scale
    qa, qb, (sa, sb) = block_operands(A[:, :192], B[:192], "row")
    got = matmul(qa, qb, scales=(sa, sb), model="hopper-fp8-promote128", inputs=None)
    exact = (qa * sa) @ (qb * sb)
    assert np.abs(got - exact).max() <= 1e-3 * np.abs(exact).max()


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: block_operands(A, B, "mxfp9"), "unknown block scheme"),
        (lambda: block_operands(A, B[:100], "mxfp8"), "do not multiply"),
        (lambda: block_operands(A[0], B, "mxfp8"), "matrix"),
        (lambda: block_operands(np.zeros((2, 0)), np.zeros((0, 3)), "row"), "empty"),
        (lambda: block_operands(np.full((2, 4), np.nan), np.ones((4, 3)), "row"), "NaN"),
        (lambda: block_operand(A, "mxfp8", role="c"), "role"),
    ],
)
def test_bad_input_is_refused(call, message):
    with pytest.raises(NumfmtError, match=message):
        call()


def test_a_block_of_zeros_gets_a_scale_the_matmul_accepts():
    a = np.zeros((2, 64))
    a[1, :32] = 1.0
    qa, qb, (sa, sb) = block_operands(a, np.ones((64, 2)), "deepseek")
    assert (sa > 0).all() and not qa[0].any()
    out = matmul(qa, qb, scales=(sa, sb), model="hopper-fp8-promote128", inputs=None)
    assert not out[0].any()  # the zero row stays exactly zero
    assert np.allclose(out[1], 32.0, rtol=2**-20)  # 448 x float32(1/448), 32 times
