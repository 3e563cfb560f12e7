"""Integer-only inference of a multilayer perceptron: what an int8 network really computes.

Weights are int8 per output channel (symmetric, -127..127), quantized ahead of time; each
layer's input is 8-bit codes 0..255 with one scale and zero point per tensor (the asymmetric
grid), calibrated on sample inputs; the product is
accumulated in int32 (true integer arithmetic on torch integer tensors); the bias is int32
with the product's scale s_x * s_w; and the int32 result becomes the next layer's int8 input
through the requantization of integer-only inference (Jacob et al., 2018):

    y_q = z_y + round(M * acc),   M = s_x * s_w / s_y = M0 * 2^-31 * 2^-n

with the multiplier ``M0`` an int32 in [2^30, 2^31) and ``n`` a right shift, so that no float
is touched at run time. ReLU is done on the codes (``max(y_q, z_y)``).

    >>> m0, shift = fixed_point(0.0123)
    >>> m0, shift, abs(m0 * 2.0 ** -(31 + shift) / 0.0123 - 1) < 2**-30
    (1690499128, 6, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn

from numfmt._display import grouped
from numfmt.errors import NumfmtError

INT32_MAX = 2**31 - 1
#: Activations: 8-bit codes with a zero point, 0 .. 255 (the course's asymmetric grid).
ACTIVATIONS = "int8/asym"
QMIN, QMAX = 0, 255


def fixed_point(m: float) -> tuple[int, int]:
    """(M0, n) with m = M0 * 2^-31 * 2^-n, M0 in [2^30, 2^31): a positive real multiplier as an
    int32 and a shift, right for n > 0 (m below one, the usual case) and left for n < 0 (m of
    one or more, up to 2^30). M0 is rounded to nearest (error below 2^-31 relative)."""
    m0, shift = fixed_points(torch.tensor([float(m)], dtype=torch.float64))
    return int(m0[0]), int(shift[0])


def fixed_points(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`fixed_point` of every multiplier in a tensor at once: (M0, n) as int64 tensors on
    m's device."""
    ok = (m > 0) & (m < 2**30)
    if not bool(ok.all()):
        raise NumfmtError(f"a requantization multiplier lies in (0, 2^30), not {m[~ok][0].item()}")
    mantissa, exponent = torch.frexp(m.to(torch.float64))
    m0 = torch.round(mantissa * 2.0**31).to(torch.int64)
    shift = -exponent.to(torch.int64)
    carried = m0 == 2**31  # rounded up to the next binade
    return torch.where(carried, 2**30, m0), torch.where(carried, shift - 1, shift)


def rounding_shift(values: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """values / 2^shift rounded to nearest, ties away from zero, in integers (int64)."""
    half = torch.where(shift > 0, 1 << (shift - 1).clamp_min(0), torch.zeros_like(shift))
    magnitude = (values.abs() + half) >> shift
    return torch.where(values < 0, -magnitude, magnitude)


def int_matmul(a: torch.Tensor, b: torch.Tensor, rows: int = 1 << 14) -> torch.Tensor:
    """a @ b for int64 tensors, exact, on any device: torch's CPU matmul takes integers, its
    CUDA one does not, so there the products are summed in int64 a block of rows at a time."""
    if a.device.type == "cpu":
        return a @ b
    block = max(1, (1 << 25) // max(1, b.shape[0] * b.shape[1]))  # about 256 MB of products
    block = min(block, rows)
    return torch.cat(
        [(a[i : i + block, :, None] * b[None]).sum(dim=1) for i in range(0, a.shape[0], block)]
    )


def requantize(
    acc: torch.Tensor, m0: torch.Tensor, shift: torch.Tensor, zero: int, qmin: int, qmax: int
) -> torch.Tensor:
    """int32 accumulators (int64 tensor) to codes: clamp(zero + round(acc * M0 / 2^(31+n)))
    per output channel (the last axis), in integer arithmetic only."""
    product = acc.to(torch.int64) * m0.to(torch.int64)  # |acc| < 2^31, M0 < 2^31: fits int64
    codes = rounding_shift(product, shift.to(torch.int64) + 31) + zero
    return codes.clamp(qmin, qmax)


@dataclass(frozen=True)
class LayerStats:
    """One integer layer on some inputs: the largest exact accumulator against the layer's
    accumulator (the headroom, in bits: negative when it overflows), the share of accumulators
    that did not fit, the bits the worst case of its width could need, and the error of its
    output codes (RMS, in codes) against rounding the exact product once: requantization's
    fixed point alone when nothing overflows, and the wrap-around too when something does."""

    name: str
    in_features: int
    out_features: int
    accumulator_bits: int
    max_accumulator: int
    headroom_bits: float
    overflowed: float
    worst_case_bits: int
    requant_error: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class IntegerLinear(nn.Module):
    """A Linear layer in integers: int8 weights per channel, int32 bias, int8 input and output
    codes with per-tensor scales, and the fixed-point multiplier and shift per channel."""

    w: torch.Tensor
    s_w: torch.Tensor
    b: torch.Tensor
    m0: torch.Tensor
    shift: torch.Tensor

    def __init__(
        self,
        linear: nn.Linear,
        s_x: float,
        z_x: int,
        s_y: float,
        z_y: int,
        relu: bool,
        accumulator_bits: int = 32,
    ) -> None:
        super().__init__()
        from numfmt.quant import quantize_tensor

        w = linear.weight.detach().to(torch.float64)
        qt = quantize_tensor(w, "int8/channel")
        self.register_buffer("w", qt.codes.to(torch.int64))  # (out, in), -127..127
        s_w = qt.qparams.scale.to(torch.float64).reshape(-1)
        self.register_buffer("s_w", s_w)
        self.s_x, self.z_x, self.s_y, self.z_y = float(s_x), int(z_x), float(s_y), int(z_y)
        bias = (
            linear.bias.detach().to(torch.float64)
            if linear.bias is not None
            else torch.zeros(w.shape[0], dtype=torch.float64, device=w.device)
        )
        self.register_buffer(
            "b", torch.round(bias / (self.s_x * s_w)).to(torch.int64).clamp(-INT32_MAX, INT32_MAX)
        )
        m0, shift = fixed_points(self.s_x * s_w / self.s_y)
        self.register_buffer("m0", m0)
        self.register_buffer("shift", shift)
        self.relu = relu
        self.accumulator_bits = accumulator_bits
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def accumulate(self, x_q: torch.Tensor) -> torch.Tensor:
        """The int32 accumulator: sum over inputs of (x_q - z_x) * w_q, plus the int32 bias;
        with a narrower ``accumulator_bits`` it wraps around as that register would."""
        acc = int_matmul(x_q.to(torch.int64) - self.z_x, self.w.T) + self.b
        if self.accumulator_bits < 64:
            span = 1 << self.accumulator_bits
            acc = (acc + span // 2) % span - span // 2  # two's complement wrap-around
        return acc

    def forward(self, x_q: torch.Tensor) -> torch.Tensor:
        y = requantize(self.accumulate(x_q), self.m0, self.shift, self.z_y, QMIN, QMAX)
        return y.clamp_min(self.z_y) if self.relu else y


def _int8_range(values: torch.Tensor) -> tuple[float, int]:
    """(scale, zero point) of 8-bit codes for a tensor's range (asymmetric, per tensor)."""
    from numfmt.quant import choose_qparams

    qp = choose_qparams(values.detach().to(torch.float64), ACTIVATIONS)
    return float(qp.scale), int(qp.zero_point)


class IntegerMLP(nn.Module):
    """An MLP of IntegerLinear layers: float in, int8 codes through, float out (the last
    layer's codes dequantized)."""

    def __init__(self, layers: list[IntegerLinear], s_in: float, z_in: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.s_in, self.z_in = s_in, z_in

    def quantize_input(self, x: torch.Tensor) -> torch.Tensor:
        """8-bit codes of float inputs (moved to the network's device)."""
        first = cast(IntegerLinear, self.layers[0])
        x = torch.as_tensor(x).to(device=first.w.device, dtype=torch.float64)
        q = torch.round(x / self.s_in) + self.z_in
        return q.clamp(QMIN, QMAX).to(torch.int64)

    def forward_codes(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The int8 codes after each layer (the input's codes first)."""
        codes = [self.quantize_input(x)]
        for layer in self.layers:
            codes.append(layer(codes[-1]))
        return codes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = cast(IntegerLinear, self.layers[-1])
        return (self.forward_codes(x)[-1] - last.z_y).to(torch.float64) * last.s_y


def integer_mlp(
    model: nn.Module,
    calibration: torch.Tensor,
    *,
    accumulator_bits: int = 32,
    overflow: str = "error",
) -> IntegerMLP:
    """An integer-only copy of an MLP (an ``nn.Sequential`` of Linear layers, each optionally
    followed by ReLU), its activation ranges calibrated on ``calibration`` inputs.

    Args:
        accumulator_bits: the accumulator register, 32 (int8 hardware's), 16 or 64.
        overflow: ``error`` refuses an accumulator too narrow for what the calibration
            inputs need; ``wrap`` builds it anyway, and it wraps around as the register would
            (to see what overflow does).
    """
    if not isinstance(model, nn.Sequential) or not len(model):
        raise NumfmtError("integer_mlp takes an nn.Sequential of Linear and ReLU layers")
    plan: list[tuple[nn.Linear, bool]] = []
    for module in model:
        if isinstance(module, nn.Linear):
            plan.append((module, False))
        elif isinstance(module, nn.ReLU) and plan and not plan[-1][1]:
            plan[-1] = (plan[-1][0], True)
        else:
            raise NumfmtError(
                f"integer_mlp handles Linear and ReLU layers, not {type(module).__name__}"
            )
    if accumulator_bits not in (16, 32, 64):
        raise NumfmtError(f"the accumulator is 16, 32 or 64 bits, not {accumulator_bits}")
    if overflow not in ("error", "wrap"):
        raise NumfmtError(f"overflow is 'error' or 'wrap', not {overflow!r}")
    device = plan[0][0].weight.device
    x = torch.as_tensor(calibration).detach().to(device=device, dtype=torch.float64)
    if x.dim() != 2 or x.shape[1] != plan[0][0].in_features or x.shape[0] == 0:
        width = plan[0][0].in_features
        raise NumfmtError(f"calibration inputs are (samples, {width}); these are {tuple(x.shape)}")
    s_in, z_in = _int8_range(x)
    layers, s_x, z_x = [], s_in, z_in
    h = x
    with torch.no_grad():
        for linear, relu in plan:
            h = nn.functional.linear(
                h,
                linear.weight.to(torch.float64),
                None if linear.bias is None else linear.bias.to(torch.float64),
            )
            if relu:
                h = torch.relu(h)
            s_y, z_y = _int8_range(h)
            layers.append(IntegerLinear(linear, s_x, z_x, s_y, z_y, relu, accumulator_bits))
            s_x, z_x = s_y, z_y
    net = IntegerMLP(layers, s_in, z_in)
    if overflow == "error" and accumulator_bits < 64:
        for stat in layer_stats(net, x):
            if stat.overflowed:
                raise NumfmtError(
                    f"layer {stat.name}'s accumulators reach "
                    f"{grouped(stat.max_accumulator)} on the "
                    f"calibration inputs, beyond int{accumulator_bits}'s "
                    f"{grouped(2 ** (accumulator_bits - 1) - 1)}: use a wider accumulator, or "
                    "overflow='wrap' to see it wrap around"
                )
    return net


def layer_stats(net: IntegerMLP, x: torch.Tensor) -> list[LayerStats]:
    """Per layer, on inputs x: the exact accumulators against the layer's register, and the
    error of the output codes against the exact product rounded once."""
    out = []
    codes = net.quantize_input(x)
    for i, layer in enumerate(cast("list[IntegerLinear]", net.layers)):
        acc = int_matmul(codes - layer.z_x, layer.w.T) + layer.b  # exact, in int64
        biggest = int(acc.abs().max()) if acc.numel() else 0
        limit = 2 ** (layer.accumulator_bits - 1) - 1
        overflowed = float((acc.abs() > limit).double().mean()) if acc.numel() else 0.0
        y = layer(codes)
        exact = acc.to(torch.float64) * (layer.s_x * layer.s_w / layer.s_y) + layer.z_y
        exact = exact.round().clamp(QMIN, QMAX)
        if layer.relu:
            exact = exact.clamp_min(layer.z_y)
        error = float(torch.sqrt(torch.mean((y.to(torch.float64) - exact) ** 2)))
        worst = 255 * 127 * layer.in_features + int(layer.b.abs().max())
        out.append(
            LayerStats(
                name=str(i),
                in_features=layer.in_features,
                out_features=layer.out_features,
                accumulator_bits=layer.accumulator_bits,
                max_accumulator=biggest,
                headroom_bits=math.log2(limit / biggest) if biggest else float(math.log2(limit)),
                overflowed=overflowed,
                worst_case_bits=worst.bit_length() + 1,
                requant_error=error,
            )
        )
        codes = y
    return out
