"""Block formats against their specifications: OCP MX v1.0 (checked with gfloat's own
implementation of the spec), NVFP4 (rebuilt from ml_dtypes casts), NF4 (brute force)."""

import ml_dtypes
import numpy as np
import pytest

from numfmt.quant import NF4_CODEBOOK, choose_qparams, dequantize, quantize, quantize_tensor

gfloat = pytest.importorskip("gfloat")
from gfloat.formats import (  # noqa: E402
    format_info_mxfp4_e2m1,
    format_info_mxfp6_e2m3,
    format_info_mxfp6_e3m2,
    format_info_mxfp8_e4m3,
    format_info_mxfp8_e5m2,
    format_info_mxint8,
)

MX = {
    "mxfp8": format_info_mxfp8_e4m3,
    "mxfp8_e5m2": format_info_mxfp8_e5m2,
    "mxfp6_e2m3": format_info_mxfp6_e2m3,
    "mxfp6_e3m2": format_info_mxfp6_e3m2,
    "mxfp4": format_info_mxfp4_e2m1,
    "mxint8": format_info_mxint8,
}


@pytest.mark.parametrize("preset", list(MX))
def test_mx_blocks_match_gfloats_implementation_of_the_spec(preset):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 32)) * np.exp2(rng.integers(-20, 20, (16, 1)))
    x[3] = 0.0  # an all-zero block: scale 2^-127
    x[5, 7] = 1e3  # an outlier that saturates its block
    ours = dequantize(quantize(x, qp := choose_qparams(x, preset)), qp)
    fi = MX[preset]
    theirs = np.stack([gfloat.quantize_block(fi, row, gfloat.compute_scale_amax) for row in x])
    assert np.array_equal(ours, theirs)


def test_mx_scale_rule_by_hand():
    # X = 2^(floor(log2(amax)) - emax), emax(E2M1) = 2: amax 6 -> X = 1; 7 -> X = 1 (7 saturates
    # to 6); 12 -> X = 2; 0.75 -> X = 2^-3
    x = np.zeros((4, 32))
    x[:, 0] = [6.0, 7.0, 12.0, 0.75]
    qp = choose_qparams(x, "mxfp4")
    assert qp.scale[:, 0].tolist() == [1.0, 1.0, 2.0, 0.125]
    assert dequantize(quantize(x, qp), qp)[:, 0].tolist() == [6.0, 6.0, 12.0, 0.75]


def test_mxint8_elements_are_int8_times_2_to_the_minus_6():
    x = np.zeros((1, 32))
    x[0, :3] = [1.5, -1.75, 1.99]
    qp = choose_qparams(x, "mxint8")
    assert float(qp.scale[0, 0]) == 2.0**-6  # shared exponent floor(log2 1.99) = 0, then 2^-6
    assert quantize(x, qp)[0, :3].tolist() == [96, -112, 127]  # 1.99 * 64 = 127.36
    x[0, 1] = -2.0  # amax 2: exponent 1
    assert float(choose_qparams(x, "mxint8").scale[0, 0]) == 2.0**-5


def _nvfp4_reference(x):
    """NVFP4 from its definition, with ml_dtypes doing the casts: a float32 tensor scale
    amax / (6 * 448); per 16 elements an E4M3 block scale amax_b / (6 * tensor_scale); elements
    cast to E2M1 (saturating at 6)."""
    g = np.float32(np.abs(x).max() / (6 * 448))
    blocks = x.reshape(-1, 16)
    b = (np.abs(blocks).max(axis=1) / (6 * np.float64(g))).astype(ml_dtypes.float8_e4m3fn)
    eff = b.astype(np.float64) * np.float64(g)
    v = np.divide(blocks, eff[:, None], out=np.zeros_like(blocks), where=eff[:, None] > 0)
    e = np.clip(v, -6, 6).astype(ml_dtypes.float4_e2m1fn).astype(np.float64)
    return (e * eff[:, None]).reshape(x.shape)


def test_nvfp4_matches_its_definition():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 64)) * np.exp2(rng.integers(-6, 6, (8, 1)))
    qp = choose_qparams(x, "nvfp4")
    assert qp.tensor_scale == float(np.float32(np.abs(x).max() / (6 * 448)))
    assert np.array_equal(dequantize(quantize(x, qp), qp), _nvfp4_reference(x))


def test_nf4_picks_the_nearest_codebook_entry_of_x_over_its_block_absmax():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 128))
    qt = quantize_tensor(x, "nf4")
    blocks = x.reshape(-1, 64)
    absmax = np.abs(blocks).max(axis=1, keepdims=True)
    nearest = np.abs(blocks[..., None] / absmax[..., None] - NF4_CODEBOOK).argmin(axis=-1)
    assert np.array_equal(qt.codes.reshape(-1, 64), nearest)
    assert np.allclose(qt.qparams.scale.reshape(-1), absmax.reshape(-1), rtol=2**-23)


@pytest.mark.parametrize("fmt", ["fp8_e4m3", "fp8_e5m2", "fp4", "e3m2"])
def test_float_grids_scale_the_absmax_onto_the_formats_max(fmt):
    x = np.random.default_rng(3).standard_normal((6, 40))
    qp = choose_qparams(x, f"{fmt}/channel")
    top = float(qp.scheme.element_format.max_value)
    assert np.all(qp.scale * top >= np.abs(x).max(axis=1))
    back = dequantize(quantize(x, qp), qp)
    grid = np.unique(np.abs(back / qp.scale[:, None]).round(12))
    values = qp.scheme.element_format
    from numfmt import decode

    representable = decode(np.arange(values.num_codes), values)
    assert np.all(np.isin(grid, np.abs(representable)))


@pytest.mark.parametrize(
    ("spec", "bits"),
    [
        ("int4/group:128/scale:fp16", 4.125),
        ("int4/asym/group:128/scale:fp16", 4 + 20 / 128),
        ("int8/channel", 8 + 32 / 256),
        ("mxfp4", 4.25),
        ("mxfp8", 8.25),
        ("nvfp4", 4.5 + 32 / (64 * 256)),
        ("nf4", 4.5),
    ],
)
def test_storage_accounting(spec, bits):
    x = np.random.default_rng(4).standard_normal((64, 256))
    qt = quantize_tensor(x, spec)
    assert qt.bits_per_value == pytest.approx(bits)
    assert qt.nbytes == sum(-(-b // 8) for b in qt.storage_bits.values())


def test_a_group_the_size_does_not_divide_still_takes_a_whole_scale():
    qt = quantize_tensor(np.ones((2, 576)), "int4/group:128/scale:fp16")
    assert qt.storage_bits["scales"] == 2 * 5 * 16
    assert qt.bits_per_value == pytest.approx(4 + 5 * 16 / 576)
