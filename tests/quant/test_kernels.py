"""The compiled kernels of numfmt/quant/_kernels.py against numpy."""

import numpy as np
import pytest

from numfmt.formats import _kernels as format_kernels
from numfmt.quant import _kernels
from numfmt.quant.schemes import parse_scheme

pytestmark = pytest.mark.skipif(not format_kernels.available(), reason="numba is not installed")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("width", [1, 7, 32, 129, 1000])
def test_row_minmax_is_numpys_min_and_max_with_nan_rows(dtype, width):
    rng = np.random.default_rng(width)
    rows = max(2, (1 << 15) // width + 1)  # large enough for the kernel
    x = (rng.standard_normal((rows, width)) * 10.0 ** rng.integers(-30, 30, (rows, 1))).astype(
        dtype
    )
    x[0] = -0.0
    x[1, -1] = np.inf
    if width > 1:
        x[1, 0] = -np.inf
    # NaNs of either sign and any payload, in every lane position and in the tail
    nan_rows = np.arange(2, rows, 3)
    x[nan_rows, rng.integers(0, width, nan_rows.size)] = np.nan
    neg = nan_rows[::2]
    x[neg, 0] = -np.nan
    unsigned = np.dtype(dtype).str.replace("f", "u")
    x[3, width - 1] = np.array(np.iinfo(unsigned).max, unsigned).view(dtype)  # all bits set
    lo, hi = _kernels.row_minmax(x)
    holds_nan = np.isnan(x).any(axis=1)
    assert np.array_equal(np.isnan(lo), holds_nan) and np.array_equal(np.isnan(hi), holds_nan)
    with np.errstate(invalid="ignore"):
        assert np.array_equal(lo[~holds_nan], x[~holds_nan].min(axis=1).astype(np.float64))
        assert np.array_equal(hi[~holds_nan], x[~holds_nan].max(axis=1).astype(np.float64))
    assert lo[1] == -np.inf or width == 1
    assert hi[1] == np.inf


def _kernels_off(monkeypatch):
    monkeypatch.setattr(_kernels, "MIN_SIZE", 1 << 62)
    monkeypatch.setattr(_kernels, "LOADED_TAKES_SMALL", False)
    monkeypatch.setattr(_kernels, "MIN_GROUPS", 1 << 62)


SPECS = [
    "int8/channel",
    "int8/full/channel",
    "int4/group:128",
    "int4/asym/group:128",
    "int3/asym/group:100",  # a tail group of 56 in rows of 256
    "uint8/asym",
    "int8/token",
]


@pytest.mark.parametrize("spec", SPECS)
def test_fused_minmax_path_is_the_general_path(spec, monkeypatch):
    from numfmt.quant import fake_quantize

    rng = np.random.default_rng(7)
    x = (rng.standard_normal((512, 256)) * rng.uniform(0.01, 100, (512, 1))).astype(np.float32)
    x[3] = 0.0  # a dead row: scale 0, values 0
    x[5] = np.abs(x[5])  # all positive: the range still holds zero
    fused = fake_quantize(x, spec)
    _kernels_off(monkeypatch)
    general = fake_quantize(x, spec)
    assert fused.dtype == general.dtype == np.float32
    assert np.array_equal(fused.view(np.uint32), general.view(np.uint32)), spec


def test_fused_path_refuses_and_warns_as_the_general_path():
    from numfmt.errors import NumfmtError, NumfmtWarning
    from numfmt.quant import fake_quantize

    x = np.random.default_rng(8).standard_normal((256, 256))
    x[10, 20] = np.nan
    with pytest.raises(NumfmtError, match="NaN"):
        fake_quantize(x, "int8/channel")
    omitted = fake_quantize(x, "int8/channel", nan_policy="omit")
    assert omitted[10, 20] == 0.0 and np.isfinite(omitted).all()
    x[10, 20] = 1e300  # a scale beyond float32
    with pytest.warns(NumfmtWarning, match="saturated"):
        fake_quantize(x, "int8/channel")


def test_int_scales_kernel_is_grid_scales(monkeypatch):
    from numfmt.quant import grid
    from numfmt.quant._xp import namespace
    from numfmt.quant.schemes import parse_scheme

    rng = np.random.default_rng(9)
    n = 1 << 13
    lo = -np.abs(rng.standard_normal(n)) * np.exp(rng.uniform(-100, 100, n))
    hi = np.abs(rng.standard_normal(n)) * np.exp(rng.uniform(-100, 100, n))
    lo[:8], hi[:8] = 0.0, [0.0, 1e-46, 1e-40, 3e38, 7e38, 1e300, 5.0, 2.0**-149]
    lo[8:13], hi[8:13] = (
        [np.nan, -1.0, np.nan, -np.inf, np.nan],
        [1.0, np.nan, np.nan, np.inf, 1e300],
    )
    xp = namespace(lo)
    for spec in ("int8", "int8/full", "int4/asym", "uint8/asym", "int16"):
        s = parse_scheme(spec)
        with np.errstate(over="ignore", invalid="ignore"):
            fast = grid.scales(xp, lo, hi, s)
            _kernels_off(monkeypatch)
            slow = grid.scales(xp, lo, hi, s)
            monkeypatch.undo()
        for a, b in zip(fast, slow, strict=True):
            assert (a is None) == (b is None), spec
            if a is not None:
                assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


def test_cpu_tensors_take_the_kernels_and_stay_tensors(monkeypatch):
    torch = pytest.importorskip("torch")
    from numfmt.quant import fake_quantize, quantize_tensor

    x = torch.randn(256, 512, dtype=torch.float32)
    for spec in ("int8/channel", "int4/asym/group:128", "int8/channel/mse:20"):
        fast_fake = fake_quantize(x, spec)
        fast = quantize_tensor(x, spec)
        _kernels_off(monkeypatch)
        ops_fake = fake_quantize(x, spec)  # the engine in torch operations
        ops = quantize_tensor(x, spec)
        monkeypatch.undo()
        assert isinstance(fast_fake, torch.Tensor) and fast_fake.dtype == torch.float32
        assert torch.equal(fast_fake, ops_fake), spec
        assert isinstance(fast.codes, torch.Tensor) and torch.equal(fast.codes, ops.codes), spec
        assert torch.equal(fast.qparams.scale, ops.qparams.scale), spec
        numpy_fake = fake_quantize(x.numpy(), spec)
        assert np.array_equal(fast_fake.numpy(), numpy_fake), spec
    # half types numpy cannot see take torch operations, and keep their dtype
    h = fake_quantize(x.to(torch.bfloat16), "int8/channel")
    assert h.dtype == torch.bfloat16
    # a tensor that requires grad keeps its gradient through the kernels' forward
    w = x.clone().requires_grad_(True)
    fake_quantize(w, "int8/channel").sum().backward()
    assert torch.equal(w.grad, torch.ones_like(w))
    assert torch.equal(x, w.detach())  # the input is never written


@pytest.mark.parametrize("spec", ["int8/token", "int8/asym/token", "int4/channel"])
def test_a_loaded_kernel_takes_small_blocks_with_the_same_values(spec, monkeypatch):
    """A forward pass fake-quantizes each token's few hundred inputs: once the kernel is
    loaded it takes them (a call, not a compile), and the values are the general path's."""
    from numfmt.quant import _jit, fake_quantize

    rng = np.random.default_rng(3)
    fake_quantize(rng.standard_normal((256, 256)).astype(np.float32), spec)  # loads the kernel
    calls = []
    serial = _jit.fake_quantize_int_minmax_serial  # (small blocks run on the calling thread)
    monkeypatch.setattr(
        _jit, "fake_quantize_int_minmax_serial", lambda *a: calls.append(1) or serial(*a)
    )
    small = (rng.standard_normal((3, 576)) * [[0.01], [1.0], [100.0]]).astype(np.float32)
    fused = fake_quantize(small, spec)
    assert calls, "the loaded kernel did not take the small block"
    _kernels_off(monkeypatch)
    general = fake_quantize(small, spec)
    assert np.array_equal(fused.view(np.uint32), general.view(np.uint32)), spec


def test_small_blocks_load_the_kernel_once_they_keep_coming(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "numfmt.quant._jit", None)  # as if not loaded yet
    monkeypatch.setattr(_kernels, "_small_calls", {})
    monkeypatch.setattr(_kernels, "SMALL_CALLS_TO_LOAD", 3)
    answers = [_kernels._worth_it("fake_quantize_int_minmax", np.float32) for _ in range(4)]
    assert answers == [False, False, True, True]
    assert _kernels._worth_it("fake_quantize_int_minmax", np.float64) is False  # its own count
    monkeypatch.setattr(_kernels, "LOADED_TAKES_SMALL", False)
    assert _kernels._worth_it("fake_quantize_int_minmax", np.float32) is False


@pytest.mark.parametrize("spec", ["int8/token", "int8/asym/token", "uint8/token", "int4/token"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows", [3, 300])  # the serial kernel and the parallel one
def test_quantize_minmax_gives_the_engines_codes_scales_and_zero_points(spec, dtype, rows):
    from numfmt.quant import choose_qparams, quantize

    rng = np.random.default_rng(rows)
    x = (rng.standard_normal((rows, 257)) * 10.0 ** rng.integers(-20, 20, (rows, 1))).astype(dtype)
    x[0] = 0.0  # a dead scale: every code the zero point's
    x[1] = np.abs(x[1])  # all positive: the asymmetric range starts at 0
    codes, scale, zero, lo, hi = _kernels.quantize_minmax(x, parse_scheme(spec))
    qp = choose_qparams(x, spec)
    assert np.array_equal(lo, qp.lo.reshape(-1)) and np.array_equal(hi, qp.hi.reshape(-1))
    assert codes.dtype == quantize(x, qp).dtype
    assert np.array_equal(codes, quantize(x, qp))
    assert np.array_equal(scale, qp.scale.reshape(-1))
    want_zero = np.zeros(rows) if qp.zero_point is None else qp.zero_point.reshape(-1)
    assert np.array_equal(zero, want_zero)


def test_quantize_minmax_refuses_rows_the_general_path_must_see():
    x = np.ones((4, 64), np.float32)
    for bad in (np.nan, np.inf, -np.inf):
        y = x.copy()
        y[2, 5] = bad
        assert _kernels.quantize_minmax(y, parse_scheme("int8/token")) is None
    assert _kernels.quantize_minmax(x, parse_scheme("int8/token/mse")) is None
    assert _kernels.quantize_minmax(x, parse_scheme("fp8_e4m3/token")) is None
