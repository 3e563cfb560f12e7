"""What an integer-only MLP computes, one input at a time.

The digits MLP, trained in float, becomes ``numfmt.nn.integer_mlp``: int8 weights per output
channel, 8-bit activation codes with a zero point, int32 accumulators and biases, and the
fixed-point multiplier M0 * 2^-(31 + n) that brings each accumulator back to the next layer's
codes. ``integer_walkthrough`` follows one test digit through it, layer by layer, beside the
float values the codes stand for, and measures the integer network on the whole test set
against the float one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, cast

import torch

from numfmt._display import Displayable
from numfmt.errors import NumfmtError
from numfmt.lessons.digits import accuracy, load_digits, mlp, train_mlp
from numfmt.lessons.integer_mlp import (
    IntegerLinear,
    IntegerMLP,
    LayerStats,
    integer_mlp,
    layer_stats,
)
from numfmt.nn.progress import Progress, say, tracker


@dataclass(frozen=True)
class LayerStep:
    """One layer of the walk: the input codes and their grid (scale, zero point), the int32
    accumulators, each channel's real multiplier M and its fixed-point (M0, shift), the
    output codes, the float values they stand for, and the float network's own values."""

    layer: int
    in_features: int
    out_features: int
    relu: bool
    input_codes: list[int]
    input_scale: float
    input_zero: int
    accumulators: list[int]
    bias: list[int]
    multipliers: list[float]
    m0: list[int]
    shifts: list[int]
    output_codes: list[int]
    output_scale: float
    output_zero: int
    dequantized: list[float]
    float_values: list[float]

    @property
    def max_error(self) -> float:
        """The largest gap between what the codes stand for and the float network's values."""
        return max(abs(a - b) for a, b in zip(self.dequantized, self.float_values, strict=True))

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["max_error"] = self.max_error
        return d


@dataclass(frozen=True, eq=False)
class IntegerWalkthrough(Displayable):
    """The lesson's result: one digit's walk through the integer network (``steps``), its
    label and both networks' answers, the per-layer statistics on the test set, and the
    accuracy of the float and integer networks (and how often they agree)."""

    sample: int
    label: int
    float_prediction: int
    integer_prediction: int
    steps: tuple[LayerStep, ...]
    stats: tuple[LayerStats, ...]
    float_accuracy: float
    integer_accuracy: float
    agreement: float
    accumulator_bits: int
    config: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "sample": self.sample,
            "label": self.label,
            "float_prediction": self.float_prediction,
            "integer_prediction": self.integer_prediction,
            "float_accuracy": self.float_accuracy,
            "integer_accuracy": self.integer_accuracy,
            "agreement": self.agreement,
            "accumulator_bits": self.accumulator_bits,
            "layers": [s.to_dict() for s in self.steps],
            "stats": [s.to_dict() for s in self.stats],
            "config": self.config,
            "seconds": self.seconds,
        }


def _walk(net: IntegerMLP, model: torch.nn.Sequential, x: torch.Tensor) -> list[LayerStep]:
    """Each integer layer's numbers for one input x (64,), beside the float network's."""
    codes = net.forward_codes(x[None, :].to(torch.float64))
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    h = x[None, :].to(torch.float64)
    steps = []
    with torch.no_grad():
        layers = cast("list[IntegerLinear]", list(net.layers))
        for i, (layer, linear) in enumerate(zip(layers, linears, strict=True)):
            h = torch.nn.functional.linear(
                h, linear.weight.to(torch.float64), linear.bias.to(torch.float64)
            )
            if layer.relu:
                h = torch.relu(h)
            acc = layer.accumulate(codes[i])[0]
            out = codes[i + 1][0]
            steps.append(
                LayerStep(
                    layer=i,
                    in_features=layer.in_features,
                    out_features=layer.out_features,
                    relu=layer.relu,
                    input_codes=codes[i][0].tolist(),
                    input_scale=layer.s_x,
                    input_zero=layer.z_x,
                    accumulators=acc.tolist(),
                    bias=layer.b.tolist(),
                    multipliers=(layer.s_x * layer.s_w / layer.s_y).tolist(),
                    m0=layer.m0.tolist(),
                    shifts=layer.shift.tolist(),
                    output_codes=out.tolist(),
                    output_scale=layer.s_y,
                    output_zero=layer.z_y,
                    dequantized=((out - layer.z_y).to(torch.float64) * layer.s_y).tolist(),
                    float_values=h[0].tolist(),
                )
            )
    return steps


def integer_walkthrough(
    sample: int = 0,
    *,
    seed: int = 0,
    accumulator_bits: int = 32,
    epochs: int = 60,
    lr: float = 3e-3,
    progress: Progress = None,
) -> IntegerWalkthrough:
    """Train the digits MLP in float, make it integer-only, and walk test digit ``sample``
    through it.

    Args:
        sample: which test digit to follow (0 .. 449).
        seed: seeds the split, the weights and the training.
        accumulator_bits: 32 (what int8 hardware uses), or 16 to see an accumulator wrap
            around, or 64.
        progress: a bar over the steps on a terminal (None: there only; True: and a line
            per step on stderr elsewhere; False: never; or a callable).
    """
    if accumulator_bits not in (16, 32, 64):
        raise NumfmtError(f"the accumulator is 16, 32 or 64 bits, not {accumulator_bits}")
    start = time.perf_counter()
    data = load_digits(seed)
    if not 0 <= sample < len(data.y_test) or int(sample) != sample:
        raise NumfmtError(
            f"sample is a test digit's index, 0 to {len(data.y_test) - 1}, not {sample!r}"
        )
    say(
        "integer-mlp: training the digits MLP in float, then converting it to integers ...",
        progress,
    )
    with tracker(3, "integer-mlp", progress, every=0) as step:
        model = mlp(seed)
        train_mlp(model, data, epochs=epochs, lr=lr, seed=seed)
        step(f"float MLP trained, {epochs} epochs")
        # the first run compiles numfmt's numba kernels here (cached on disk after)
        net = integer_mlp(model, data.x_train, accumulator_bits=accumulator_bits, overflow="wrap")
        step("converted to integers")
        with torch.no_grad():
            float_pred = model(data.x_test).argmax(dim=1)
            int_pred = net(data.x_test).argmax(dim=1)
        step("test digits scored")
    x = data.x_test[sample]
    return IntegerWalkthrough(
        sample=int(sample),
        label=int(data.y_test[sample]),
        float_prediction=int(float_pred[sample]),
        integer_prediction=int(int_pred[sample]),
        steps=tuple(_walk(net, model, x)),
        stats=tuple(layer_stats(net, data.x_test)),
        float_accuracy=accuracy(model, data),
        integer_accuracy=float((int_pred == data.y_test).double().mean()),
        agreement=float((int_pred == float_pred).double().mean()),
        accumulator_bits=accumulator_bits,
        config={
            "dataset": "scikit-learn digits (8x8)",
            "widths": [64, 32, 32, 10],
            "weights": "int8 per output channel, symmetric (-127..127)",
            "activations": "8-bit codes 0..255 per tensor, with a zero point",
            "calibration": f"the {len(data.y_train)} training digits",
            "seed": seed,
            "epochs": epochs,
        },
        seconds=time.perf_counter() - start,
    )
