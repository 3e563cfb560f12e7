"""The GPU's packed product (``numfmt.nn.packed.device_linear``, a Triton kernel that reads a
layer's codes once): within the float32 accumulation bound of the exact product, as the
host's is, for every scheme the host's kernels take. It runs on CUDA where a GPU is lent, and
otherwise under Triton's interpreter in a subprocess of its own (``tests/interpreted.py``); CI
has no Triton: skipped."""

from __future__ import annotations

import importlib.util
import warnings

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("numba")  # (the host's kernels, which the layers below are built beside)
if importlib.util.find_spec("triton") is None:
    pytest.skip("Triton is not installed", allow_module_level=True)

from numfmt import errors  # noqa: E402
from numfmt.errors import SlowPathWarning  # noqa: E402
from numfmt.nn import packed  # noqa: E402
from numfmt.nn.modules import decoded_weights  # noqa: E402
from tests.interpreted import (  # noqa: E402
    DEVICE,
    cuda_only,
    kernels,
    test_the_kernels_in_tritons_interpreter,  # noqa: F401 (run here)
)
from tests.nn.test_packed import SCHEMES, _bound, _layer  # noqa: E402


def _on_device(scheme: str, **kw):
    """The layer on the host, and the same one on the device (a second copy)."""
    return _layer(scheme, **kw), _layer(scheme, **kw).to(DEVICE)


def _product(lay, x, bias):
    with warnings.catch_warnings():
        warnings.simplefilter("error", SlowPathWarning)  # the kernel ran: no fallback
        return packed.device_linear(lay, x, bias)


@kernels
@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("rows", [1, 3, packed.DIRECT_ROWS])
def test_the_gpu_product_is_the_exact_one_within_float32_accumulation(scheme, rows):
    host, layer = _on_device(scheme)
    lay = packed.device_layout(layer)
    assert isinstance(lay, packed.DeviceLayout) and packed.direct(lay), lay
    x = torch.randn(rows, host.in_features, generator=torch.Generator().manual_seed(1))
    y = _product(lay, x.to(DEVICE), layer.bias)
    assert y.device.type == DEVICE and y.dtype == torch.float32 and y.shape == (rows, 37)
    exact, bound = _bound(host, x)
    err = (y.cpu().double() - exact).abs()
    assert bool((err <= bound).all()), float((err / bound).max())


@kernels
@pytest.mark.parametrize("n_out, n_in", [(1, 2), (17, 130), (64, 1024)])
def test_every_output_is_computed_whatever_the_shape(n_out, n_in):
    host, layer = _on_device("int4/asym/group:32" if n_in % 32 == 0 else "int8/channel",
                             n_out=n_out, n_in=n_in)  # fmt: skip
    x = torch.randn(2, n_in, generator=torch.Generator().manual_seed(2))
    y = _product(packed.device_layout(layer), x.to(DEVICE), None).cpu()
    exact, bound = _bound(host, x)
    exact -= host.bias.double()  # (no bias given)
    assert bool(((y.double() - exact).abs() <= bound).all())


@kernels
def test_codes_held_in_another_memory_order_are_read_as_their_values():
    host, layer = _on_device("int8/channel")
    layer.codes = layer.codes.T.contiguous().T  # the same codes, column by column
    assert not layer.codes.is_contiguous()
    x = torch.randn(1, host.in_features, generator=torch.Generator().manual_seed(5))
    y = _product(packed.device_layout(layer), x.to(DEVICE), layer.bias).cpu()
    exact, bound = _bound(host, x)
    assert bool(((y.double() - exact).abs() <= bound).all())


@kernels
def test_an_input_of_another_width_is_refused_not_read_past_the_codes():
    from numfmt.errors import NumfmtError

    _, layer = _on_device("int4/group:32", n_out=8, n_in=64)
    lay = packed.device_layout(layer)
    for width in (32, 128):
        with pytest.raises(NumfmtError, match=f"the input has {width} features; .* takes 64"):
            packed.device_linear(lay, torch.randn(1, width).to(DEVICE))


@kernels
def test_half_inputs_are_multiplied_in_float32_and_rounded_once():
    _, layer = _on_device("int4/group:32")
    lay = packed.device_layout(layer)
    x = torch.randn(2, 576, generator=torch.Generator().manual_seed(3)).to(DEVICE)
    for dtype in (torch.bfloat16, torch.float16):
        y = _product(lay, x.to(dtype), layer.bias)
        assert y.dtype == dtype
        assert torch.equal(y, _product(lay, x.to(dtype).float(), layer.bias).to(dtype))


@kernels
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_the_bias_is_added_in_float32_after_the_product_as_the_host_adds_it(dtype):
    _, layer = _on_device("q4_1")
    lay = packed.device_layout(layer)
    x = torch.randn(3, 576, generator=torch.Generator().manual_seed(6)).to(DEVICE)
    bias = layer.bias.to(getattr(torch, dtype))
    y = _product(lay, x, bias)
    assert torch.equal(y, _product(lay, x, None) + bias.float())


@kernels
def test_a_kernel_that_cannot_run_here_says_so_once_and_gives_none(monkeypatch):
    from numfmt.nn import _linear_triton

    class Broken:
        def __getitem__(self, grid):
            def launch(*args, **kwargs):
                raise RuntimeError("no kernel image is available for execution on the device")

            return launch

    monkeypatch.setattr(_linear_triton, "linear_kernel", Broken())
    monkeypatch.setattr(errors, "_said", set())
    _, layer = _on_device("int8/channel", n_out=8, n_in=32)
    lay = packed.device_layout(layer)
    x = torch.randn(1, 32).to(DEVICE)
    with pytest.warns(SlowPathWarning, match="could not run here.*no kernel image"):
        assert packed.device_linear(lay, x) is None


@kernels
@pytest.mark.parametrize(
    "scheme, n_in, why",
    [
        ("int4/channel", 63, "even input size"),
        ("int3/channel", 64, "4- and 8-bit codes"),
        ("int4/channel:1", 64, "per output channel"),
    ],
)
def test_layouts_the_kernel_cannot_take_are_named(scheme, n_in, why):
    _, layer = _on_device(scheme, n_out=8, n_in=n_in)
    lay = packed.device_layout(layer)
    assert isinstance(lay, str) and why in lay


@kernels
def test_scales_that_float32_does_not_hold_are_not_multiplied_directly():
    _, layer = _on_device("int8/channel/scale:float64", n_out=8, n_in=32)
    layer.scale = layer.scale.double() * (1 + 2.0**-40)  # not a float32 number
    lay = packed.device_layout(layer)
    assert isinstance(lay, packed.DeviceLayout) and not packed.direct(lay)


# -- a layer on CUDA takes the kernel itself ----------------------------------------------


@cuda_only
@pytest.mark.parametrize("scheme", ["int8/channel", "int4/group:128", "q4_1", "nf4"])
def test_a_cuda_layer_multiplies_its_codes_and_keeps_no_float_copy(scheme):
    host, layer = _on_device(scheme)
    assert isinstance(layer.layout(), packed.DeviceLayout)
    x = torch.randn(1, host.in_features, generator=torch.Generator().manual_seed(4))
    model = torch.nn.Sequential(layer)
    with torch.no_grad(), decoded_weights(model), warnings.catch_warnings():
        warnings.simplefilter("error", SlowPathWarning)
        y = layer(x.cuda())
        kept = dict(layer._decoded)
    exact, bound = _bound(host, x)
    assert bool(((y.cpu().double() - exact).abs() <= bound).all())
    int_grid = not scheme.startswith("nf")  # a table's levels: decoded once, as on the CPU
    assert (kept == {}) == int_grid
