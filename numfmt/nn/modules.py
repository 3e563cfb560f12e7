"""Quantized layers: the packed codes and scales of a weight, and a forward pass that uses them.

A :class:`QuantLinear` holds what a deployment would store: the codes packed at their width
(two int4 codes to a byte), the scales (and zero points or minima) as buffers on the model's
device. On the CPU (numba) and on CUDA (Triton), codes of 8 and 4 bits multiply a few rows
of input by the packed codes directly (``numfmt.nn.packed``: a quarter or an eighth of the
float weight's bytes read, no float copy kept); many rows, and the schemes and devices no
kernel takes, decode the weight (each value rounded once to the input's dtype from its float64
value; small int grids straight in float32, exactly) and multiply with torch. For int8 per
output channel, symmetric, with bfloat16 inputs on the CPU it calls torch's own int8 weight
kernel (``aten._weight_int8pack_mm``), which scales after the product (the same values to
bfloat16 rounding). Scales are held in the dtype their format needs (float32 unless float16 or
bfloat16), zero points in the narrowest integer, so that the bytes a layer holds are what it
stores; they keep that dtype when the model is cast (``model.to(torch.bfloat16)`` casts the
bias and the inputs, not the scales). transformers' ``Conv1D`` (GPT-2's projections, the
weight stored transposed) becomes a QuantLinear with the weight in Linear's layout: its output
axis is its second. With ``activations`` (W8A8) each input is quantized on the fly; for 8-bit
inputs (per token or per tensor) and int8 weights per channel or per tensor, the product is
integer inference's (``packed.integer_linear`` on the CPU, ``packed.device_integer_linear``
through torch's integer matmul on CUDA: the sums of code products exact, the int32 bias added
to them, then scaled once); otherwise, and with gradients, the input is fake-quantized and
multiplied as floats (``packed.decode_only()`` gives that path everywhere).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from numfmt.errors import NumfmtError
from numfmt.nn import packed
from numfmt.quant import packing
from numfmt.quant.fake import fake_quantize
from numfmt.quant.granularity import PerAxis, PerTensor
from numfmt.quant.grid import grid_table
from numfmt.quant.qparams import QParams, choose_qparams
from numfmt.quant.schemes import QuantScheme
from numfmt.quant.tensor import QuantizedTensor

_PARAMS = ("scale", "zero_point", "minimum", "tensor_scale")
#: Input dtypes the packed product takes (in float32; float64 inputs decode exactly).
_KERNEL_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def _held_dtype(name: str, scheme: QuantScheme) -> torch.dtype:
    """The dtype a layer holds a parameter in: what the scale format needs (float16 and
    bfloat16 scales as themselves, others in float32, which holds E8M0 and E4M3 exactly), and
    zero points in the narrowest integer that holds the grid."""
    if name == "zero_point":
        lo, hi = scheme.qmin, scheme.qmax
        for dtype in (torch.int8, torch.int16, torch.int32):
            info = torch.iinfo(dtype)
            if info.min <= lo and hi <= info.max:
                return dtype
        return torch.int64
    if name == "tensor_scale":
        return torch.float32
    return {"float16": torch.float16, "bfloat16": torch.bfloat16}.get(
        scheme.scale_format, torch.float32
    )


class _Quantized(nn.Module):
    """What QuantLinear and QuantEmbedding share: the weight's codes (packed below 8 bits)
    and its parameters as buffers, and its decoding."""

    codes: torch.Tensor
    scale: torch.Tensor
    zero_point: torch.Tensor | None
    minimum: torch.Tensor | None
    tensor_scale: torch.Tensor | None
    #: decoded weights by (dtype, device) inside :func:`decoded_weights`, else None
    _decoded: dict[tuple[torch.dtype, torch.device], torch.Tensor] | None

    def _store(self, qt: QuantizedTensor) -> None:
        self.qparams = replace(qt.qparams, lo=None, hi=None, code_scale=None, code_minimum=None)
        self.scheme: QuantScheme = qt.scheme
        self.weight_shape = tuple(qt.shape)
        self._levels: dict[torch.device, torch.Tensor] = {}  # float and codebook grids
        bits = qt.scheme.bits
        self.packed = bits < 8
        codes = qt.codes.reshape(-1) if self.packed else qt.codes
        self.register_buffer("codes", packing.pack(codes, bits) if self.packed else codes)
        for name in _PARAMS:
            value = getattr(qt.qparams, name)
            stored = None if value is None else value.to(_held_dtype(name, qt.scheme))
            if (
                stored is not None
                and name != "zero_point"
                and not torch.equal(stored.double(), value.double())
            ):
                stored = value.to(torch.float64)  # a scale float32 cannot hold: keep it whole
            self.register_buffer(name, stored)

    def _apply(self, fn, recurse=True):
        # moves go through; casts do not reach the scales (they would lose their exactness)
        kept = {n: getattr(self, n) for n in _PARAMS if getattr(self, n) is not None}
        super()._apply(fn, recurse)
        for name, before in kept.items():
            after = getattr(self, name)
            if after.dtype != before.dtype:
                setattr(self, name, before.to(after.device))
        return self

    def quantized(self) -> QuantizedTensor:
        """The weight as the quantization layer's QuantizedTensor (codes unpacked)."""
        held = {n: getattr(self, n) for n in _PARAMS}
        wide: dict[str, Any] = {
            n: None if v is None else v.to(torch.int64 if n == "zero_point" else torch.float64)
            for n, v in held.items()
        }
        return QuantizedTensor(self._codes(), replace(self.qparams, **wide), "float32")

    def _codes(self) -> torch.Tensor:
        if not self.packed:
            return self.codes
        count = 1
        for n in self.weight_shape:
            count *= n
        codes = packing.unpack(self.codes, self.scheme.bits, count)
        if self.scheme.kind == "int" and self.scheme.qmin < 0:
            codes = packing.to_signed(codes, self.scheme.bits)
        return codes.reshape(self.weight_shape)

    def dequantized_weight(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The weight the codes stand for, in ``dtype`` (rounded once from the exact value).
        Inside :func:`decoded_weights` it is decoded once and kept, unless the layer
        multiplies by its packed codes (``numfmt.nn.packed``), which keeps no float copy."""
        cache = getattr(self, "_decoded", None)
        if (
            cache is None
            or id(self) not in _KEEPING  # (a copy made inside a block is not)
            or (isinstance(self, QuantLinear) and self._keeps_packed())
        ):
            return self._dequantized(dtype)
        key = (dtype, self.codes.device)
        if key not in cache:
            cache[key] = self._dequantized(dtype)
        return cache[key]

    def _dequantized(self, dtype: torch.dtype) -> torch.Tensor:
        # a small int grid with a scale float32 holds: (q - z) * s, an integer of at most 9
        # bits times that scale, is rounded once in float32 as the exact value would be
        lay = self.layout() if self.codes.device.type == "cpu" else "on a GPU: torch decodes"
        if isinstance(lay, packed.Layout):  # the host's one-pass kernel: the same floats
            return packed.decode(lay, dtype if dtype == torch.float32 else torch.float64).to(dtype)
        direct = self._simple and dtype in (torch.float32, torch.float64)
        return self._decode(dtype if direct else torch.float64).to(dtype)

    def forget_layout(self) -> None:
        """Drop the kept layout (and the views of the buffers it holds): for a layer whose
        buffers are read back from disk at each call (``numfmt.models.placement``)."""
        self.__dict__.pop("_layout", None)

    def layout(self) -> packed.Layout | packed.DeviceLayout | str:
        """The weight as the packed kernels take it, or why they cannot (kept while the
        buffers are the same)."""
        # (a kept layout holds views of the buffers, so their memory is not reused)
        b = self._buffers
        key = tuple(
            0 if t is None else (t.data_ptr(), t._version)
            for t in (b["codes"], b["scale"], b["zero_point"], b["minimum"], b["tensor_scale"])
        )
        kept = self.__dict__.get("_layout")
        if kept is None or kept[0] != key:
            kept = (key, packed.layout(self))
            self._layout = kept
        return kept[1]

    def _decode(self, work: torch.dtype) -> torch.Tensor:
        """The weight by the quantization layer's ``dequantize`` arithmetic (level times
        scale, exact in float64 for int and float grids), computed in ``work``, in a few torch
        operations on the layer's device."""
        g = self.qparams.grouping
        codes = self._codes()
        scale = self.scale.to(work)
        if self.tensor_scale is not None:  # NVFP4's second level
            scale = scale * self.tensor_scale.to(work)
        if self.scheme.kind == "int":
            w = codes.to(work)
            if self.zero_point is not None:
                w = w - g.expand(self.zero_point.to(work))
            w = w * g.expand(scale)
            if self.minimum is not None:
                w = w + g.expand(self.minimum.to(work))
            return w
        table = self._levels.get(codes.device)
        if table is None:
            levels = np.array(grid_table(self.scheme), dtype=np.float64)  # a writable copy
            table = torch.as_tensor(levels, device=codes.device)
            self._levels[codes.device] = table
        return table[codes.to(torch.int64)].to(work) * g.expand(scale)

    @property
    def _simple(self) -> bool:
        """An int grid of at most 8 bits with scales from the range, stored in a format that
        float32 holds: the forward pass can decode it in two torch operations."""
        s = self.scheme
        return (
            s.kind == "int"
            and s.bits <= 8
            and s.scale_rule == "range"
            and s.mapping.value in ("symmetric", "asymmetric")
            and s.scale_format in ("float32", "float16", "bfloat16")
        )

    @property
    def nbytes(self) -> int:
        """Bytes the layer's weight holds in memory: packed codes and parameters."""
        return sum(b.numel() * b.element_size() for b in self.buffers())


def _check_bias_mode(mode: str, scheme: QuantScheme, activations, has_bias: bool) -> None:

    if mode == "float":
        return
    if mode != "int32":
        raise NumfmtError(f"bias is 'float' or 'int32', not '{mode}'")
    if activations is None:
        raise NumfmtError(
            "an int32 bias takes the scale s_x * s_w of the product, so it needs quantized "
            "activations (a w8a8 recipe)"
        )
    if not isinstance(scheme.granularity, PerAxis | PerTensor) or scheme.kind != "int":
        raise NumfmtError(
            "an int32 bias needs one int weight scale per output channel (or per tensor), "
            f"not {scheme.granularity}"
        )


@contextlib.contextmanager
def decoded_weights(model: nn.Module) -> Iterator[nn.Module]:
    """Keep each quantized layer's decoded weight while the block runs, and drop it after.

    A forward pass decodes every weight from its codes; generating token by token repeats
    that for each token. Inside this block each layer decodes once (per dtype and device) and
    reuses the result: the same values, the float model's memory again for the time being.
    ``generate`` and the scoring functions use it; a block inside another leaves the outer
    one's decoded weights in place.
    """
    fresh = [m for m in model.modules() if isinstance(m, _Quantized) and id(m) not in _KEEPING]
    for m in fresh:
        m._decoded = {}
        _KEEPING.add(id(m))
    try:
        yield model
    finally:
        for m in fresh:
            m._decoded = None
            _KEEPING.discard(id(m))


#: The layers inside a ``decoded_weights`` block (by identity: a deep copy of one made inside
#: a block carries a copy of its cache, which it must not use).
_KEEPING: set[int] = set()


class QuantLinear(_Quantized):
    """A Linear (or Conv1D) layer whose weight is held quantized."""

    #: a scheme (inputs quantized on the fly), its static ranges (QParams), or None
    activations: QuantScheme | QParams | None

    def __init__(
        self,
        qt: QuantizedTensor,
        bias: torch.Tensor | None,
        *,
        activations: QuantScheme | QParams | None = None,
        source: str = "linear",
        bias_mode: str = "float",
    ) -> None:
        super().__init__()
        _check_bias_mode(bias_mode, qt.scheme, activations, bias is not None)
        self.bias_mode = bias_mode
        self.out_features, self.in_features = qt.shape
        self._store(qt)
        if bias is not None:
            bias = nn.Parameter(bias.detach().clone(), requires_grad=False)
        self.bias = bias
        self.activations = activations
        self.source = source
        # the weight rows' sums on a GPU (W8A8 with zero points), with the codes' place
        self._row_sums: tuple[tuple, torch.Tensor] | None = None
        # torch's int8 weight kernel (CPU): fast for bfloat16 inputs (for float32 it is
        # tens of times slower than decoding the weight and multiplying)
        self._int8_kernel = (
            qt.scheme.kind == "int"
            and qt.scheme.bits == 8
            and qt.scheme.mapping.value == "symmetric"
            and isinstance(qt.scheme.granularity, PerAxis)
            and qt.scheme.granularity.axis in (0, -2)
            and hasattr(torch.ops.aten, "_weight_int8pack_mm")
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.activations is not None and x.dtype in _KERNEL_DTYPES and packed.active():
            y = self._integer_forward(x)
            if y is not None:
                return y
        if self.activations is not None and self.bias_mode == "int32" and self.bias is not None:
            qx = self.activations
            if not isinstance(qx, QParams):
                qx = choose_qparams(x, qx, nan_policy="omit")
            x = fake_quantize(x, qx)
            y = nn.functional.linear(x, self.dequantized_weight(x.dtype))
            return y + self._int32_bias(qx.effective_scale).to(y.dtype)
        if isinstance(self.activations, QParams):  # static: the calibrated range
            x = fake_quantize(x, self.activations.to(x.device))
        elif self.activations is not None:
            x = fake_quantize(x, self.activations, nan_policy="omit")
        if self._int8_kernel and x.device.type == "cpu" and x.dtype == torch.bfloat16:
            flat = x.reshape(-1, self.in_features)
            y = torch.ops.aten._weight_int8pack_mm(flat, self.codes, self.scale.to(x.dtype))
            y = y.reshape(*x.shape[:-1], self.out_features)
            return y if self.bias is None else y + self.bias
        if (
            x.dtype in _KERNEL_DTYPES
            and packed.active()
            and x.shape[-1] == self.in_features  # (others: torch's message, as a Linear's)
            and x.device == self.codes.device
        ):
            lay = self.layout()
            if isinstance(lay, str):
                packed.say_once(lay)
            elif not packed.direct(lay):
                packed.say_once(f"scales float32 does not hold ({self.scheme})")
            elif (
                x.numel() <= packed.DIRECT_ROWS * self.in_features
                and not (x.requires_grad and torch.is_grad_enabled())
                and (packed.lean(lay) or id(self) not in _KEEPING)
            ):
                y = packed.linear(lay, x, self.bias)
                if y is not None:
                    return y
        return nn.functional.linear(x, self.dequantized_weight(x.dtype), self.bias)

    def _keeps_packed(self) -> bool:
        """Whether the layer multiplies by its packed codes even inside
        :func:`decoded_weights`: an int grid's product is as fast as the decoded one; a table
        of levels (NF4, FP4 ...) is looked up code by code, slower than float on the CPU, so
        a generation decodes those once."""
        if not packed.active():
            return False
        lay = self.layout()
        return not isinstance(lay, str) and packed.direct(lay) and packed.lean(lay)

    def _integer_forward(self, x: torch.Tensor) -> torch.Tensor | None:
        """The product as W8A8 inference computes it: the input quantized to codes, the
        sums of code products in integers (exact), scaled once; None where that cannot run
        (after saying why, once), for the fake-quantized product."""
        if x.requires_grad and torch.is_grad_enabled():
            return None
        if x.device.type == "cuda":
            return self._integer_forward_on_device(x)
        if x.device.type != "cpu":
            return None
        lay = self.layout()
        if isinstance(lay, packed.DeviceLayout):  # (x on the CPU, the layer not: torch says so)
            return None
        why = lay if isinstance(lay, str) else packed.integer(lay)
        assert self.activations is not None
        got = packed.input_codes(x, self.activations) if why is None else why
        if isinstance(got, str):
            packed.say_once(got, integer=True)
            return None
        assert not isinstance(lay, str)
        codes, sx, zx = got
        bias_codes = None
        if self.bias_mode == "int32" and self.bias is not None:
            bias_codes = self._int32_bias_codes(torch.from_numpy(sx)[:, None])[0].numpy()
        y = torch.from_numpy(packed.integer_linear(lay, codes, sx, zx, bias_codes))
        if self.bias is not None and bias_codes is None:
            y += self.bias.detach().to(torch.float32)
        y = y.reshape(*x.shape[:-1], self.out_features)
        return y if x.dtype == torch.float32 else y.to(x.dtype)

    def _integer_forward_on_device(self, x: torch.Tensor) -> torch.Tensor | None:
        """``_integer_forward`` on a GPU: the input's codes by the fused kernel, the sums by
        torch's integer matmul (``packed.device_integer_linear``), the same floats as the
        CPU's; None (said once) where the weight, the inputs or the kernel do not allow it."""
        act = self.activations
        assert act is not None
        if isinstance(act, QParams):  # a calibrated range, held where the layer was built
            act = act.to(x.device)
        why = packed.integer_on_device(self)
        got = packed.device_input_codes(x, act) if why is None else why
        if isinstance(got, str):
            packed.say_once(got, integer=True)
            return None
        codes, sx, zx = got
        bias_codes = None
        if self.bias_mode == "int32" and self.bias is not None:
            bias_codes = self._int32_bias_codes(sx[:, None])[0]
        w = self.codes.reshape(self.out_features, self.in_features)
        sw = self.scale.to(torch.float64).reshape(-1).expand(self.out_features)
        assert self.activation_scheme is not None
        sums = None
        if self.activation_scheme.mapping.value != "asymmetric":
            zx = None  # (all 0: the product need not look)
        if zx is not None or codes.dtype != torch.int8:  # the weight rows' sums, kept
            key = (w.device, w.data_ptr())
            kept = getattr(self, "_row_sums", None)
            if kept is None or kept[0] != key:
                kept = self._row_sums = (key, w.sum(dim=1, dtype=torch.int64))
            sums = kept[1]
        try:
            y = packed.device_integer_linear(w, sw, codes, sx, zx, bias_codes, sums)
        except RuntimeError as exc:  # a shape or GPU the integer matmul does not take
            packed.say_once(f"torch's integer matmul refused: {exc}", integer=True)
            return None
        if self.bias is not None and bias_codes is None:
            y += self.bias.detach().to(torch.float32)
        y = y.reshape(*x.shape[:-1], self.out_features)
        return y if x.dtype == torch.float32 else y.to(x.dtype)

    def _int32_bias_codes(self, input_scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(codes, scales) of the bias as integer inference holds it: int32 codes (exact
        integers in float64; 0 where the scale is) with scale s_x * s_w, the product's, so
        that they add to the int32 accumulator; per token when the input's scales are."""
        assert self.bias is not None  # forward calls it only with a bias
        s = input_scale.to(torch.float64) * self.scale.to(torch.float64).reshape(-1)
        limit = 2.0**31 - 1
        codes = torch.clamp(torch.round(self.bias.to(torch.float64) / s), -limit, limit)
        return torch.where(s > 0, codes, torch.zeros_like(s)), s

    def _int32_bias(self, input_scale: torch.Tensor) -> torch.Tensor:
        """The int32 bias (``_int32_bias_codes``) decoded."""
        codes, s = self._int32_bias_codes(input_scale)
        return torch.where(s > 0, codes * s, torch.zeros_like(s))

    @property
    def activation_scheme(self) -> QuantScheme | None:
        """How inputs are quantized: None, or a scheme (with static ranges, their scheme)."""
        a = self.activations
        return a.scheme if isinstance(a, QParams) else a

    def extra_repr(self) -> str:
        act: QuantScheme | str | None = self.activation_scheme
        if act is not None:
            act = f", activations={act}" + (
                " (static)" if isinstance(self.activations, QParams) else ""
            )
        else:
            act = ""
        return f"{self.in_features} -> {self.out_features}, {self.scheme}{act}"


class QuantEmbedding(_Quantized):
    """An Embedding whose table is held quantized; a lookup decodes only the rows it takes."""

    def __init__(self, qt: QuantizedTensor, padding_idx: int | None = None) -> None:
        super().__init__()
        self.num_embeddings, self.embedding_dim = qt.shape
        self.padding_idx = padding_idx
        self._store(qt)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        host = packed.active() and self.codes.device.type == "cpu"
        lay = self.layout() if host else "decode_only, or on a GPU"
        if (
            isinstance(lay, packed.Layout)
            and ids.device.type == "cpu"
            and not ids.dtype.is_floating_point
            and ids.numel()
            and int(ids.min()) >= 0
            and int(ids.max()) < self.num_embeddings
        ):  # the rows taken, decoded as the whole table would be (others: torch's message)
            rows = packed.decode(lay, torch.float32, ids.to(torch.int64))
            return rows.reshape(*ids.shape, self.embedding_dim)
        return nn.functional.embedding(ids, self.dequantized_weight(), self.padding_idx)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, {self.scheme}"
