"""The fused Triton kernels (``numfmt.quant._gpu``) give the host's codes, values, scales, masks
and MSE choices bit for bit. They run on CUDA where a GPU is lent, and under Triton's
interpreter on the host otherwise: Triton reads TRITON_INTERPRET when it defines a kernel, so
on a machine without a GPU this module runs again in a subprocess of its own with it set
(as tests/arith/test_triton.py does). Everything here skips where Triton is not installed (CI),
and the tests of the public API on CUDA tensors skip without a GPU."""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if importlib.util.find_spec("triton") is None:
    pytest.skip("Triton is not installed", allow_module_level=True)

from numfmt import errors  # noqa: E402
from numfmt.errors import NumfmtError, SlowPathWarning  # noqa: E402
from numfmt.quant import (  # noqa: E402
    _kernels,
    calibration,
    choose_qparams,
    fake_quantize,
    quantize_tensor,
)
from numfmt.quant.fake import clipped_mask  # noqa: E402
from numfmt.quant.qparams import as_scheme  # noqa: E402
from tests.interpreted import (  # noqa: E402
    DEVICE,
    INTERPRETED,
    cuda_only,
    kernels,
    test_the_kernels_in_tritons_interpreter,  # noqa: F401 (run here)
)


@pytest.fixture(scope="module")
def gpu():
    """numfmt.quant._gpu, its kernels compiled for the GPU or interpreted on the host."""
    from numfmt.quant import _gpu

    assert _gpu._triton() is not None
    return _gpu


SPECS = ["int8/channel", "uint8/channel/asym", "int4/channel/asym", "int8/channel/full", "int2"]


def rows_with_ties(n_rows: int, width: int, dtype, seed: int = 0) -> np.ndarray:
    """Rows of different magnitudes; the first has scale 1 exactly (max 127), so its values
    k + 1/2 are ties that rint must send to even."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_rows, width)) * rng.uniform(1e-3, 1e3, (n_rows, 1))
    x[0] = rng.integers(-126, 126, width) + 0.5
    x[0, 0] = 127.0
    x[0, 1:6] = [0.5, -0.5, 2.5, -2.5, -0.0]
    x = x.astype(dtype)
    if n_rows > 2:
        # exact ties under a scale of 14 significant bits (127 s is the row's max), where
        # the product by the reciprocal 1 / s rounds a k + 1/2 the wrong way for about half
        # of them; and near-ties under another, with their neighbours in the row's dtype
        for i, s, offset in ((1, 15935 * 2.0**-14, 0), (2, 1.7, 1)):
            k = rng.integers(-126, 126, width) + 0.5
            ties = (k * s).astype(dtype)
            if offset:
                ties[1::3] = np.nextafter(ties[1::3], dtype(np.inf))
                ties[2::3] = np.nextafter(ties[2::3], dtype(-np.inf))
            x[i] = ties
            x[i, 0] = dtype(127 * np.float32(s))
    return x


@kernels
@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7, 37), (3, 9000)])  # one row per program; ranges given
def test_codes_scales_and_values_are_the_hosts(gpu, spec, dtype, shape):
    scheme = as_scheme(spec)
    x = rows_with_ties(*shape, dtype)
    t = torch.from_numpy(x).to(DEVICE)
    if type(scheme.granularity).__name__ == "PerTensor":  # one group: one row
        t = t.reshape(1, -1)
    codes, scale, zero, lo, hi = gpu.quantize_minmax(t, scheme)
    qp = choose_qparams(x, scheme)
    q = quantize_tensor(x, scheme)  # per-tensor specs: one group
    rows = x.reshape(codes.shape)
    assert codes.dtype == torch.from_numpy(q.codes).dtype
    assert np.array_equal(codes.cpu().numpy(), q.codes.reshape(codes.shape))
    assert np.array_equal(scale.cpu().numpy(), np.asarray(qp.scale, np.float64).reshape(-1))
    if qp.zero_point is not None:
        assert np.array_equal(zero.cpu().numpy(), np.asarray(qp.zero_point).reshape(-1))
    assert np.array_equal(lo.cpu().numpy(), rows.min(axis=1).astype(np.float64))
    assert np.array_equal(hi.cpu().numpy(), rows.max(axis=1).astype(np.float64))
    values, inside = gpu.fake_quantize_minmax(t, scheme, mask=True)
    assert values.dtype == t.dtype
    assert np.array_equal(values.cpu().numpy(), fake_quantize(x, scheme).reshape(values.shape))
    assert np.array_equal(inside.cpu().numpy(), ~clipped_mask(x, qp).reshape(inside.shape))


@kernels
@pytest.mark.parametrize(
    "spec", ["uint32/channel/asym", "int32/channel", "int16/channel", "uint8/channel/asym"]
)
def test_wide_codes_and_awkward_rows_are_the_hosts(gpu, spec):
    # codes of 2^29 and more take the float64 division (the float32 shortcut's remainder
    # would round); rows of zeros (scale 0), all below zero, and subnormal
    x = np.array(
        [
            [0.0, 2925958656.0, 2705463552.0, 1.0],
            [0.0, 0.0, -0.0, 0.0],
            [-3.0, -1.5, -0.25, -2.75],
            [1e-45, -3e-44, 2e-40, 0.0],
            [-3e38, 3e38, 1.0, -1.0],
        ],
        np.float32,
    )
    scheme = as_scheme(spec)
    codes, scale, zero, _, _ = gpu.quantize_minmax(torch.from_numpy(x).to(DEVICE), scheme)
    q = quantize_tensor(x, scheme)
    assert np.array_equal(codes.cpu().numpy(), q.codes)
    assert np.array_equal(scale.cpu().numpy(), np.asarray(q.qparams.scale, np.float64))
    if q.qparams.zero_point is not None:
        assert np.array_equal(zero.cpu().numpy(), np.asarray(q.qparams.zero_point))
    values, _ = gpu.fake_quantize_minmax(torch.from_numpy(x).to(DEVICE), scheme)
    assert np.array_equal(values.cpu().numpy(), fake_quantize(x, scheme))


@pytest.mark.skipif(INTERPRETED, reason="the interpreter runs any device's tensors")
def test_devices_other_than_cuda_are_declined():
    from numfmt.quant import _gpu

    t = torch.ones(4, 8, device="meta")
    assert _gpu.quantize_minmax(t, as_scheme("int8/channel")) is None
    assert _gpu.fake_quantize_minmax(t, as_scheme("int8/channel")) is None


@kernels
def test_a_kernel_that_cannot_run_here_falls_back_and_says_so(gpu, monkeypatch):
    class Broken:
        def __getitem__(self, grid):
            def launch(*args, **kwargs):
                raise RuntimeError("no kernel image is available for execution on the device")

            return launch

    monkeypatch.setattr(gpu._triton(), "minmax_kernel", Broken())
    for name in ("mse_kernel", "search_kernel", "scales_kernel"):
        monkeypatch.setattr(gpu._triton(), name, Broken())
    monkeypatch.setattr(errors, "_said", set())
    t = torch.ones(4, 8, device=DEVICE)
    scheme = as_scheme("int8/channel")
    with pytest.warns(SlowPathWarning, match="could not run here.*no kernel image"):
        assert gpu.quantize_minmax(t, scheme) is None
    tried = []  # a kernel that failed is not tried again (each try would compile it)
    monkeypatch.setattr(gpu, "_failed", set())
    kernel = Broken()
    assert not gpu.launch(kernel, 1, (t,), {"A": 1}, tried.append)
    assert not gpu.launch(kernel, 1, (t,), {"A": 1}, tried.append)
    assert len(tried) == 1
    assert not gpu.launch(kernel, 1, (t,), {"A": 2}, tried.append)  # other constants: tried
    assert len(tried) == 2
    scales = torch.ones(4, 3, dtype=torch.float64, device=DEVICE)
    assert gpu.mse_errors(t, scales, None, scheme) is None
    lo, hi = -torch.ones(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
    assert gpu.mse_search(t, lo.to(DEVICE), hi.to(DEVICE), scheme, 10) is None
    assert gpu.int_scales(lo.to(DEVICE), hi.to(DEVICE), scheme) is None


@kernels
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("spec", ["int8/channel", "uint4/asym/group:32", "int8/channel/full"])
def test_half_rows_give_the_hosts_values_codes_and_masks(gpu, dtype, spec):
    # the host's path computes in float64 and casts through float32 (torch's cast): among
    # 2^18 values some lie near a midpoint where one rounding and two part
    scheme = as_scheme(spec)
    g = torch.Generator().manual_seed(9)
    x = torch.randn(64, 4096, generator=g) * torch.rand(64, 1, generator=g) * 8
    x = x.to(getattr(torch, dtype))
    rows = x.reshape(-1, 32) if "group" in spec else x
    values, inside = gpu.fake_quantize_minmax(rows.to(DEVICE), scheme, mask=True)
    assert values.dtype == x.dtype
    want = fake_quantize(x, scheme)  # (the host's torch path: half types are not numba's)
    assert torch.equal(values.cpu().reshape(x.shape), want)
    qp = choose_qparams(x, scheme)
    assert torch.equal(inside.cpu().reshape(x.shape), ~clipped_mask(x, qp))
    codes = gpu.quantize_minmax(rows.to(DEVICE), scheme)[0]
    assert torch.equal(codes.cpu().reshape(x.shape), quantize_tensor(x, scheme).codes)


@kernels
def test_ties_round_to_even(gpu):
    x = rows_with_ties(1, 40, np.float32)
    codes = gpu.quantize_minmax(torch.from_numpy(x).to(DEVICE), as_scheme("int8/channel"))[0]
    assert codes[0, :6].tolist() == [127, 0, 0, 2, -2, 0]


@kernels
def test_the_clipped_mask_marks_what_the_grid_clips(gpu):
    # a scale that cannot grow past float32's largest value saturates: refused, not clipped
    # silently; a grid that clips (an integer zero point rounds) is marked where it does
    scheme = as_scheme("uint8/channel/asym")
    x = np.array([[-1.0, 0.3, 254.0, 254.2]], np.float32)
    t = torch.from_numpy(x).to(DEVICE)
    _, inside = gpu.fake_quantize_minmax(t, scheme, mask=True)
    expected = ~clipped_mask(x, choose_qparams(x, scheme))
    assert inside.cpu().numpy().tolist() == expected.tolist()


@kernels
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e300])
def test_rows_that_hold_nan_inf_or_saturate_are_refused(gpu, bad):
    x = np.ones((4, 50))
    x[2, 7] = bad
    t = torch.from_numpy(x).to(DEVICE)
    scheme = as_scheme("int8/channel")
    with np.errstate(over="ignore", invalid="ignore"):  # (the interpreter computes in numpy)
        assert gpu.quantize_minmax(t, scheme) is None
        assert gpu.fake_quantize_minmax(t, scheme) is None


@kernels
def test_other_dtypes_and_schemes_are_declined(gpu):
    t = torch.ones(4, 8, dtype=torch.int32, device=DEVICE)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert gpu.quantize_minmax(t, as_scheme("int8/channel")) is None
    assert any(issubclass(w.category, SlowPathWarning) for w in seen)
    t32 = t.float()
    assert gpu.quantize_minmax(t32, as_scheme("fp8_e4m3/channel")) is None
    assert gpu.quantize_minmax(t32, as_scheme("int8/channel/percentile")) is None


@kernels
@pytest.mark.parametrize("spec", ["int8/token", "uint8/asym/token", "int8", "uint8/asym"])
@pytest.mark.parametrize("width", [40, 9000])
def test_omit_takes_nan_and_inf_as_the_general_paths_omit(gpu, spec, width):
    # the W8A8 inputs' codes on a GPU: no refusal, so no wait for the device
    from numfmt.quant import quantize

    scheme = as_scheme(spec)
    x = rows_with_ties(5, width, np.float32, seed=8)
    x[1, 3], x[2, 4], x[2, 7], x[3, :] = np.nan, np.inf, -np.inf, np.nan
    qp = choose_qparams(x, scheme, nan_policy="omit")
    want = quantize(x, qp)
    rows = torch.from_numpy(x).to(DEVICE)
    per_token = type(scheme.granularity).__name__ == "PerToken"
    with np.errstate(invalid="ignore", over="ignore"):
        got = gpu.quantize_minmax(rows if per_token else rows.reshape(1, -1), scheme, omit=True)
    assert np.array_equal(got[0].cpu().numpy().reshape(x.shape), want)
    assert np.array_equal(got[1].cpu().numpy(), np.asarray(qp.scale).reshape(-1))
    if qp.zero_point is not None:
        assert np.array_equal(got[2].cpu().numpy(), np.asarray(qp.zero_point).reshape(-1))
    assert gpu.quantize_minmax(rows, scheme) is None  # (without omit: refused, as before)


@kernels
@pytest.mark.parametrize("spec", ["int8/channel", "uint4/channel/asym", "int4/group:32"])
@pytest.mark.parametrize("width", [96, 9024])
def test_mse_errors_are_the_hosts_and_choose_the_same_ratio(gpu, spec, width):
    scheme = as_scheme(spec)
    rows = rows_with_ties(6, width, np.float32, seed=3)
    if type(scheme.granularity).__name__ == "PerGroup":
        rows = rows.reshape(-1, 32)
    lo, hi = calibration.minmax(np, rows, scheme)
    _, scales, zeros, _ = calibration.grid.candidate_scales(np, lo, hi, scheme, 40, None)
    host = _kernels.mse_errors(rows, scales, zeros, scheme)
    if host is None:  # numba missing: the exact numpy errors
        host = calibration._candidate_errors(np, rows, scales, zeros, None, scheme)
    to = {"device": DEVICE}
    ours = gpu.mse_errors(
        torch.from_numpy(rows).to(**to),
        torch.from_numpy(scales).to(**to),
        None if zeros is None else torch.from_numpy(zeros).to(**to),
        scheme,
    )
    assert ours.shape == host.shape
    np.testing.assert_allclose(ours.cpu().numpy(), host, rtol=1e-12, atol=0)
    assert np.array_equal(
        calibration.first_least(np, ours.cpu().numpy()), calibration.first_least(np, host)
    )


@kernels
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_mse_declines_rows_that_are_not_finite(gpu, bad):
    rows = torch.ones(3, 16, device=DEVICE)
    rows[1, 2] = bad
    scales = torch.ones(3, 4, dtype=torch.float64, device=DEVICE)
    assert gpu.mse_errors(rows, scales, None, as_scheme("int8/channel")) is None


@kernels
@pytest.mark.parametrize(
    ("spec", "width", "ratios"),
    [
        ("int8/channel", 96, 100),
        ("uint4/channel/asym", 96, 40),
        ("int4/group:32", 96, 100),
        ("int8/channel/full", 9024, 30),  # rows longer than one program's chunk
        ("uint8/channel/asym", 300, 300),  # more candidates than one block of the pick
        ("int2/channel", 64, 7),
    ],
)
def test_mse_search_chooses_the_hosts_ranges(gpu, spec, width, ratios):
    scheme = as_scheme(spec)
    rows = rows_with_ties(8, width, np.float32, seed=4)
    rows[5] = 0.0  # a dead row: every candidate's scale is 0
    rows[6, :-1] *= 1e-3  # one outlier: the search clips it
    if type(scheme.granularity).__name__ == "PerGroup":
        rows = rows.reshape(-1, 32)
    lo0, hi0 = calibration.minmax(np, rows, scheme)
    ref = calibration.search(np, rows, scheme, ratios=ratios)
    ours = gpu.mse_search(
        torch.from_numpy(rows).to(DEVICE),
        torch.from_numpy(lo0).to(DEVICE),
        torch.from_numpy(hi0).to(DEVICE),
        scheme,
        ratios,
    )
    assert np.array_equal(ours[0].cpu().numpy(), ref[0])
    assert np.array_equal(ours[1].cpu().numpy(), ref[1])
    assert (ours[1].cpu().numpy() < hi0).any()  # (some row chose a ratio below 1)


@kernels
def test_mse_search_keeps_ranges_that_are_not_finite(gpu):
    # the general path's search keeps them too (ratio 1); choose_qparams never sends them
    rows = torch.ones(3, 16, dtype=torch.float64, device=DEVICE)
    rows[1, 2], rows[2, 3] = float("nan"), float("inf")
    lo = torch.tensor([0.0, float("nan"), 1.0], dtype=torch.float64, device=DEVICE)
    hi = torch.tensor([1.0, float("nan"), float("inf")], dtype=torch.float64, device=DEVICE)
    with np.errstate(invalid="ignore", over="ignore"):
        got_lo, got_hi = gpu.mse_search(rows, lo, hi, as_scheme("int8/channel"), 20)
    assert got_lo[1].isnan() and got_hi[1].isnan()
    assert got_lo[2] == 1.0 and got_hi[2] == float("inf")


@kernels
@pytest.mark.parametrize("spec", ["int8/channel", "uint8/asym", "int4/channel/full", "int32"])
def test_device_scales_are_the_hosts(gpu, spec):
    scheme = as_scheme(spec)
    rng = np.random.default_rng(7)
    lo = -np.abs(rng.standard_normal(200)) * 10.0 ** rng.integers(-40, 40, 200)
    hi = np.abs(rng.standard_normal(200)) * 10.0 ** rng.integers(-40, 40, 200)
    lo[:7] = [0.0, -0.0, 0.0, -1e300, np.nan, 5.0, np.nan]  # zero, dead, saturated, NaN ...
    hi[:7] = [0.0, 0.0, 3.0, 1e300, 1.0, 7.0, 1e300]  # ... above 0, NaN (not saturated)
    with np.errstate(invalid="ignore", over="ignore"):
        ref = calibration.grid.scales(np, lo, hi, scheme)
        ours = gpu.int_scales(
            torch.from_numpy(lo).to(DEVICE), torch.from_numpy(hi).to(DEVICE), scheme
        )
    assert np.array_equal(ours[0].cpu().numpy(), ref.scale, equal_nan=True)
    assert np.array_equal(ours[2].cpu().numpy(), ref.saturated)
    if ref.zero_point is None:
        assert ours[1] is None
    else:
        assert np.array_equal(ours[1].cpu().numpy(), ref.zero_point)


@pytest.mark.skipif(not INTERPRETED, reason="on CUDA the test below takes the real dispatch")
@pytest.mark.parametrize("spec", ["int8/channel/mse:60", "uint4/group:16/asym/mse:20", "int8"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_choose_qparams_on_a_device_takes_the_search_and_scale_kernels(
    gpu, spec, dtype, monkeypatch
):
    from numfmt.quant import _xp

    calls = []
    for name in ("mse_search", "int_scales"):
        kernel = getattr(gpu, name)
        monkeypatch.setattr(gpu, name, lambda *a, k=kernel, n=name: calls.append(n) or k(*a))
    x = torch.from_numpy(rows_with_ties(12, 64, np.float32, seed=6)).to(getattr(torch, dtype))
    ref = choose_qparams(x, spec)  # (the host: numba for float32, torch for bfloat16)
    monkeypatch.setattr(_xp, "on_cpu", lambda a: not _xp.is_torch(a))
    ours = choose_qparams(x, spec)
    monkeypatch.undo()
    assert ("mse_search" in calls) == ("mse" in spec) and "int_scales" in calls
    for name in ("scale", "lo", "hi"):
        assert np.array_equal(getattr(ours, name).numpy(), np.asarray(getattr(ref, name)))
    if ref.zero_point is not None:
        assert np.array_equal(ours.zero_point.numpy(), np.asarray(ref.zero_point))


@pytest.mark.skipif(not INTERPRETED, reason="on CUDA the tests below take the real dispatch")
@pytest.mark.parametrize("spec", ["int8/channel", "int4/group:16", "uint8/asym", "int8/token"])
def test_the_public_api_dispatches_device_tensors_to_the_kernels(gpu, spec, monkeypatch):
    # the interpreter runs host tensors: seen as a device's, they take the CUDA dispatch
    from numfmt.quant import _xp

    calls = []
    for name in ("fake_quantize_minmax", "quantize_minmax"):
        kernel = getattr(gpu, name)
        monkeypatch.setattr(gpu, name, lambda *a, k=kernel: calls.append(1) or k(*a))
    monkeypatch.setattr(_xp, "on_cpu", lambda a: False)
    x = rows_with_ties(12, 48, np.float32, seed=5)
    t = torch.from_numpy(x).requires_grad_()
    y = fake_quantize(t, spec)
    q = quantize_tensor(t.detach(), spec)
    monkeypatch.undo()
    assert len(calls) >= 2
    assert np.array_equal(y.detach().numpy(), fake_quantize(x, spec))
    assert type(y.grad_fn).__name__ == "FakeQuantizeSTEBackward"
    ref = quantize_tensor(x, spec)
    assert np.array_equal(q.codes.numpy(), ref.codes)
    assert np.array_equal(q.qparams.scale.numpy(), np.asarray(ref.qparams.scale))


# -- the public API on CUDA tensors (the dispatch) ------------------------------------------


@cuda_only
@pytest.mark.parametrize("spec", ["int8/channel", "int4/group:128", "uint8/asym", "int8"])
def test_cuda_fake_quantize_and_quantize_tensor_match_numpy(spec):
    x = rows_with_ties(64, 512, np.float32, seed=1)
    t = torch.from_numpy(x).cuda()
    got = fake_quantize(t, spec)
    assert got.device.type == "cuda" and got.dtype == torch.float32
    assert np.array_equal(got.cpu().numpy(), fake_quantize(x, spec))
    q, ref = quantize_tensor(t, spec), quantize_tensor(x, spec)
    assert q.codes.device.type == "cuda"
    assert np.array_equal(q.codes.cpu().numpy(), ref.codes)
    assert np.array_equal(q.qparams.scale.cpu().numpy(), np.asarray(ref.qparams.scale))


@cuda_only
def test_cuda_gradients_pass_straight_through_the_fused_kernel():
    x = torch.randn(32, 256, device="cuda", requires_grad=True)
    y = fake_quantize(x, "int8/channel/full")
    assert type(y.grad_fn).__name__ == "FakeQuantizeSTEBackward"
    y.sum().backward()
    qp = choose_qparams(x.detach(), "int8/channel/full")
    assert torch.equal(x.grad, (~clipped_mask(x.detach(), qp)).float())


@cuda_only
def test_cuda_mse_search_chooses_the_hosts_ranges():
    x = rows_with_ties(256, 1024, np.float32, seed=2)
    ours = choose_qparams(torch.from_numpy(x).cuda(), "int8/channel/mse:100")
    ref = choose_qparams(x, "int8/channel/mse:100")
    assert np.array_equal(ours.scale.cpu().numpy(), np.asarray(ref.scale))


@cuda_only
def test_cuda_nan_is_refused_with_the_hosts_message():
    x = torch.ones(8, 8, device="cuda")
    x[3, 3] = float("nan")
    with pytest.raises(NumfmtError) as on_cuda:
        fake_quantize(x, "int8/channel")
    with pytest.raises(NumfmtError) as on_host:
        fake_quantize(x.cpu(), "int8/channel")
    assert str(on_cuda.value) == str(on_host.value)
