"""One engine for numpy and torch: the same codes, scales and values, bit for bit on the CPU,
for every scheme family and range method; results in the caller's library, dtype and device."""

import numpy as np
import pytest

from numfmt.quant import (
    choose_qparams,
    compare_schemes,
    dequantize,
    error_report,
    fake_quantize,
    quantize,
    quantize_tensor,
)
from tests.quant.conftest import DEVICES

torch = pytest.importorskip("torch")

INT_FAMILIES = [
    f"int{b}{m}{g}"
    for b in (2, 3, 4, 8, 16)
    for m in ("", "/asym", "/full", "/min")
    for g in ("", "/channel", "/channel:1", "/group:32", "/group:48", "/token")
]
OTHER_FAMILIES = [
    "fp8_e4m3/group:32",
    "fp8_e5m2/channel",
    "fp4/group:16",
    "e3m2/channel",
    "bf16/channel",
    "mxfp8",
    "mxfp6_e2m3",
    "mxfp6_e3m2",
    "mxfp4",
    "mxint8",
    "nvfp4",
    "nf4",
    "q8_0",
    "q4_0",
    "q5_0",
    "q4_1",
    "q5_1",
    "int8/scale:fp16/channel",
    "int4/group:32/scale:e8m0",
    "int8/channel/scale:bf16",
    "int32/channel",
    "int24/asym/channel",
    "int8/stochastic",
]
METHODS = ["percentile:99", "mse", "mse:20", "entropy", "l2_histogram"]
METHOD_FAMILIES = [
    f"{base}/{method}"
    for method in METHODS
    for base in (
        "int4/channel",
        "int4/asym/group:32",
        "int4/min/group:32",
        "fp8_e4m3",
        "nf4",
        "mxfp4",
        "nvfp4",
        "int8",
    )
]


def _bits_equal(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal bit for bit (so -0.0 differs from 0.0), NaN included."""
    return a.dtype == b.dtype and np.array_equal(a.view(f"u{a.itemsize}"), b.view(f"u{b.itemsize}"))


def _tensor(seed=0, shape=(48, 160)):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * np.exp(rng.standard_normal((shape[0], 1)))
    x[3, 5] = 40.0  # an outlier
    x[7] = 0.0  # a dead channel
    return x.astype(np.float32)


#: The histogram searches run for seconds each on two cores.
SLOW_METHODS = ("entropy", "l2_histogram")


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(s, marks=pytest.mark.slow) if s.endswith(SLOW_METHODS) else s
        for s in INT_FAMILIES + OTHER_FAMILIES + METHOD_FAMILIES
    ],
)
def test_numpy_and_torch_give_the_same_codes_scales_and_values(spec):
    x = _tensor()
    t = torch.from_numpy(x)
    a, b = quantize_tensor(x, spec, seed=0), quantize_tensor(t, spec, seed=0)
    assert isinstance(b.codes, torch.Tensor) and isinstance(b.qparams.scale, torch.Tensor)
    assert np.array_equal(a.qparams.scale, b.qparams.scale.numpy())
    if a.scheme.rounding.value == "stochastic":  # numpy and torch draw different numbers:
        gap = np.abs(a.codes.astype(int) - b.codes.numpy().astype(int))  # floor or ceiling
        assert gap.max() <= 1 and 0 < gap.mean() < 0.5
        return
    assert np.array_equal(a.codes, b.codes.numpy())
    assert str(a.codes.dtype) == str(b.codes.dtype).removeprefix("torch.")
    fa, fb = fake_quantize(x, spec), fake_quantize(t, spec)
    assert fa.dtype == np.float32 and fb.dtype == torch.float32
    assert _bits_equal(fa, fb.numpy())
    assert _bits_equal(a.dequantize().astype(np.float32), fa)  # one pass = two steps
    ra, rb = a.report(x), b.report(t)
    assert ra.mse == pytest.approx(rb.mse, rel=1e-12) and ra.n == rb.n
    assert ra.clipped_fraction == rb.clipped_fraction


@pytest.mark.parametrize(
    ("spec", "numpy_dtype", "torch_dtype"),
    [
        ("int2", np.int8, torch.int8),
        ("int4", np.int8, torch.int8),
        ("int8", np.int8, torch.int8),
        ("int4/asym", np.uint8, torch.uint8),
        ("int8/asym", np.uint8, torch.uint8),
        ("int12", np.int16, torch.int16),
        ("int16/asym", np.uint16, torch.uint16),
        ("int32", np.int32, torch.int32),
        ("fp8_e4m3", np.uint8, torch.uint8),
        ("nf4", np.uint8, torch.uint8),
        ("mxfp4", np.uint8, torch.uint8),
        ("q4_1", np.uint8, torch.uint8),
    ],
)
def test_codes_come_in_the_narrowest_dtype(spec, numpy_dtype, torch_dtype):
    x = _tensor()
    assert quantize_tensor(x, spec).codes.dtype == numpy_dtype
    assert quantize_tensor(torch.from_numpy(x), spec).codes.dtype == torch_dtype


@pytest.mark.parametrize(
    "dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64], ids=str
)
def test_fake_quantize_keeps_a_tensors_dtype(dtype):
    t = torch.from_numpy(_tensor()).to(dtype)
    out = fake_quantize(t, "int4/group:32")
    assert out.dtype == dtype and out.shape == t.shape
    # the values are the float64 ones, rounded once into the tensor's dtype
    exact = dequantize(
        quantize(t, choose_qparams(t, "int4/group:32")), choose_qparams(t, "int4/group:32")
    )
    assert torch.equal(out, exact.to(dtype))


def test_fake_quantize_keeps_a_numpy_arrays_dtype():
    import ml_dtypes

    for dtype in (np.float16, ml_dtypes.bfloat16, np.float32, np.float64):
        x = _tensor().astype(dtype)
        assert fake_quantize(x, "int8/channel").dtype == dtype
    assert fake_quantize(np.arange(10), "int8").dtype == np.float64  # integers: float64
    assert fake_quantize([0.5, 1.0], "int8").dtype == np.float64


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("spec", ["int8/channel", "int4/asym/group:32", "nvfp4", "nf4", "q4_1"])
def test_results_stay_on_the_tensors_device(device, spec):
    t = torch.from_numpy(_tensor()).to(device)
    qt = quantize_tensor(t, spec)
    assert qt.codes.device.type == device and qt.qparams.scale.device.type == device
    assert fake_quantize(t, spec).device.type == device
    assert qt.dequantize().device.type == device
    r = qt.report(t)
    assert np.isfinite(r.sqnr_db)


@pytest.mark.cuda
@pytest.mark.parametrize("spec", INT_FAMILIES[::5] + OTHER_FAMILIES[:-1] + METHOD_FAMILIES[::4])
def test_cuda_codes_match_the_cpu_but_for_counted_near_ties(spec):
    x = _tensor(seed=5, shape=(256, 512))
    cpu = quantize_tensor(torch.from_numpy(x), spec)
    gpu = quantize_tensor(torch.from_numpy(x).cuda(), spec)
    # CUDA divides and rounds float64 as IEEE asks; reductions sum in another order, so a
    # range search may take a neighbouring candidate only where two losses tie within 1e-9
    differ = (cpu.codes != gpu.codes.cpu()).float().mean().item()
    scales_differ = (cpu.qparams.scale != gpu.qparams.scale.cpu()).float().mean().item()
    if cpu.scheme.method in ("minmax", "percentile") or cpu.scheme.scale_rule == "gguf":
        assert differ == 0 and scales_differ == 0, spec
    else:
        assert differ < 1e-3 and scales_differ < 1e-2, spec


def test_per_token_scales_follow_the_leading_shape():
    x = torch.randn(2, 3, 64, generator=torch.Generator().manual_seed(0))
    qp = choose_qparams(x, "int8/token")
    assert tuple(qp.scale.shape) == (2, 3, 1)
    rows = x.reshape(6, 64)
    by_row = choose_qparams(rows, "int8/channel")
    assert torch.equal(qp.scale.reshape(-1), by_row.scale)
    assert torch.equal(quantize(x, qp).reshape(6, 64), quantize(rows, by_row))


@pytest.mark.parametrize(
    "spec",
    [
        "int8",
        "int4/asym/channel",
        "int4/min/group:16",
        "fp8_e4m3",
        "nf4",
        "mxfp4",
        "nvfp4",
        "q4_0",
        "q4_1",
        "q8_0",
    ],
)
@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_an_all_zero_tensor_quantizes_exactly(spec, library):
    x = np.zeros((4, 64), dtype=np.float32)
    if library == "torch":
        x = torch.from_numpy(x)
    qt = quantize_tensor(x, spec)
    back = qt.dequantize()
    assert float(abs(back).max()) == 0.0
    r = qt.report(x)
    assert (r.mse, r.max_abs_error, r.sqnr_db, r.cosine) == (0.0, 0.0, float("inf"), 1.0)
    assert r.to_dict()["sqnr_db"] is None and '"sqnr_db": null' in r.to_json()


def test_error_report_and_compare_schemes_take_tensors():
    t = torch.from_numpy(_tensor())
    q = fake_quantize(t, "int4/channel")
    r = error_report(t, q)
    assert r.n == t.numel() and 10 < r.sqnr_db < 30
    table = compare_schemes(t, ["int8", "int4/group:32", "nf4"])
    assert [row.scheme for row in table.rows] == ["int8", "int4/group:32", "nf4"]
    assert table.best().scheme == "int8"


def test_stochastic_rounding_on_torch_is_seeded_and_unbiased():
    x = torch.full((200_000,), 0.3, dtype=torch.float64)
    x[:2] = torch.tensor([-1.0, 1.0])
    qp = choose_qparams(x, "int2/stochastic")
    a = quantize(x, qp, seed=1)
    assert torch.equal(a, quantize(x, qp, seed=1))
    assert not torch.equal(a, quantize(x, qp, seed=2))
    assert abs(dequantize(a, qp)[2:].mean().item() - 0.3) < 0.005


@pytest.mark.parametrize(
    "spec",
    ["fp8_e4m3/channel/stochastic", "int4/group:32/stochastic", "nf4/stochastic", "q4_1", "mxfp4"],
)
@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_fake_quantize_over_many_chunks_is_quantize_then_dequantize(spec, library):
    # 512 x 1024 runs in several cache-sized chunks on the CPU
    x = np.random.default_rng(9).standard_normal((512, 1024))
    if library == "torch":
        x = torch.from_numpy(x)
    qp = choose_qparams(x, spec)
    fake = fake_quantize(x, qp, seed=3)
    two_steps = dequantize(quantize(x, qp, seed=3), qp)
    a, b = (np.asarray(v) for v in (fake, two_steps))
    assert a.shape == (512, 1024) and np.array_equal(a.view(np.uint64), b.view(np.uint64))
