"""PTQ against QAT, measured: the digits MLP at each bit width, rounded after training or
trained through the rounding.

For each bit width b the float network's weights go onto a symmetric int-b grid per output
channel (2 bits: the three levels -1, 0, 1 times a scale). Post-training quantization picks
each channel's scale from its weights (min-max: the largest magnitude; MSE: the clip ratio
with the least squared error). Quantization-aware training starts from the float weights and
fine-tunes a few epochs with the weights fake-quantized in the forward pass, the
straight-through estimator carrying the gradient through the rounding; ``qat`` recomputes
the min-max scale at every step, ``qat-lsq`` learns it (LSQ). Every quantized model is scored
as deployed: ``convert`` turns it into codes and scales first. With ``activations=a`` each
layer's input is quantized too, at a bits per tensor: a static range calibrated on the
training set for PTQ, a moving-average observer for QAT.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from numfmt._display import Displayable
from numfmt.errors import NumfmtError
from numfmt.lessons.digits import WIDTHS, accuracy, load_digits, mlp, train_mlp
from numfmt.nn.progress import Progress, say, tracker
from numfmt.nn.qat import convert, prepare_qat
from numfmt.nn.quantize import quantize_model

#: The methods of the lesson, in the order of its table and plot.
METHODS = ("float", "ptq-minmax", "ptq-mse", "qat", "qat-lsq")
#: What each method means, for the table's legend and ``--help``.
MEANING = {
    "float": "the float32 network",
    "ptq-minmax": "rounded after training, each channel's scale from its largest weight",
    "ptq-mse": "rounded after training, each channel's clip range chosen by least squared error",
    "qat": "fine-tuned through the rounding (straight-through estimator), min-max scales",
    "qat-lsq": "fine-tuned through the rounding with learned scales (LSQ)",
}


@dataclass(frozen=True)
class AccuracyRow:
    """One model of the lesson: its method, weight bits (None for float), test accuracy."""

    method: str
    bits: int | None
    accuracy: float

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "bits": self.bits, "accuracy": self.accuracy}


@dataclass(frozen=True, eq=False)
class PTQvsQAT(Displayable):
    """The lesson's result: a row per (method, bits), the float row first, and the training
    curves (per epoch: mean training loss and test accuracy) of the float model and of each
    QAT fine-tune, keyed ``float`` and ``qat int4`` / ``qat-lsq int4``."""

    rows: tuple[AccuracyRow, ...]
    curves: dict[str, list[tuple[float, float]]]
    config: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def bits(self) -> list[int]:
        return sorted({r.bits for r in self.rows if r.bits is not None}, reverse=True)

    @property
    def methods(self) -> list[str]:
        return [m for m in METHODS if any(r.method == m for r in self.rows)]

    def accuracy(self, method: str, bits: int | None = None) -> float:
        """The test accuracy of one method at one bit width (float: no bits)."""
        for r in self.rows:
            if r.method == method and (method == "float" or r.bits == bits):
                return r.accuracy
        raise NumfmtError(f"the lesson has no row for {method} at {bits} bits")

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": [r.to_dict() for r in self.rows],
            "curves": {
                k: [
                    {"epoch": i + 1, "loss": loss, "accuracy": acc}
                    for i, (loss, acc) in enumerate(v)
                ]
                for k, v in self.curves.items()
            },
            "config": self.config,
            "seconds": self.seconds,
        }


def _check_bits(bits: Sequence[int], name: str = "bits") -> list[int]:
    """Whole numbers from 2 to 16, each once, in the order given."""
    out = []
    for given in bits:
        number = isinstance(given, int | float) and not isinstance(given, bool)
        if not number or not math.isfinite(given) or given != int(given):
            raise NumfmtError(f"{name} are whole numbers from 2 to 16, not {given!r}")
        if not 2 <= given <= 16:
            raise NumfmtError(f"{name} lie from 2 to 16; {given!r} does not")
        out.append(int(given))
    if not out:
        raise NumfmtError(f"give at least one bit width in {name}")
    return list(dict.fromkeys(out))


def ptq_vs_qat(
    bits: Sequence[int] = (8, 4, 3, 2),
    *,
    seed: int = 0,
    activations: int | None = None,
    epochs: int = 60,
    qat_epochs: int = 10,
    lr: float = 3e-3,
    qat_lr: float = 1e-3,
    methods: Sequence[str] = METHODS,
    device: str | torch.device = "cpu",
    progress: Progress = None,
) -> PTQvsQAT:
    """Train the digits MLP in float, then quantize it by each method at each bit width.

    Args:
        bits: the weight bit widths, each 2..16.
        seed: seeds the split, the initial weights and the batches' order.
        activations: also quantize each layer's input at this many bits (per tensor,
            asymmetric); None leaves activations in float.
        epochs, lr: the float training; qat_epochs, qat_lr: each QAT fine-tune.
        methods: a subset of ``ptq-minmax``, ``ptq-mse``, ``qat``, ``qat-lsq`` (float is
            always measured).
        progress: a bar over the models on a terminal (None: there only; True: and a line
            per model on stderr elsewhere; False: never; or a callable, called with each
            model's name when it is done).

    Examples:
        >>> r = ptq_vs_qat(bits=[8], methods=["ptq-minmax"], epochs=5)  # doctest: +SKIP
        >>> r.accuracy("ptq-minmax", 8) > 0.9  # doctest: +SKIP
        True
    """
    bits = _check_bits(bits)
    if activations is not None:
        (activations,) = _check_bits([activations], "activation bits")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise NumfmtError(f"unknown method {unknown[0]!r}; the methods are {', '.join(METHODS)}")
    for name, value in (("epochs", epochs), ("qat_epochs", qat_epochs)):
        if int(value) != value or value < 1:
            raise NumfmtError(f"{name} is a whole number of at least 1, not {value!r}")
    start = time.perf_counter()
    data = load_digits(seed, device)
    chosen = [m for m in METHODS[1:] if m in methods]
    act = None if activations is None else f"int{activations}/asym"
    net = mlp(seed).to(device)
    say(f"qat: training the float MLP on the digits ({epochs} epochs) ...", progress)
    with tracker(1 + len(bits) * len(chosen), "qat", progress, every=0) as step:
        curves = {"float": train_mlp(net, data, epochs=epochs, lr=lr, seed=seed)}
        rows = [AccuracyRow("float", None, accuracy(net, data))]
        step("float")
        for b in bits:
            for method in chosen:
                model, curve = _quantized(net, data, method, b, act, seed, qat_epochs, qat_lr)
                if curve is not None:
                    curves[f"{method} int{b}"] = curve
                rows.append(AccuracyRow(method, b, accuracy(model, data)))
                step(f"{method} int{b}")
    config = {
        "dataset": "scikit-learn digits (8x8, 1,797 images)",
        "train": len(data.y_train),
        "test": len(data.y_test),
        "widths": list(WIDTHS),
        "weights": "int<bits>/channel (symmetric)",
        "activations": act,
        "epochs": epochs,
        "qat_epochs": qat_epochs,
        "lr": lr,
        "qat_lr": qat_lr,
        "seed": seed,
        "device": str(device),
    }
    return PTQvsQAT(tuple(rows), curves, config, time.perf_counter() - start)


def _quantized(net, data, method, bits, act, seed, qat_epochs, qat_lr):
    """The deployed model of one method at one bit width, and its QAT curve (or None)."""
    weights = f"int{bits}/channel"
    if method.startswith("ptq"):
        mse = "/mse" if method == "ptq-mse" else ""
        static = {} if act is None else {"activations": act + mse, "calibration": data.x_train}
        model, _ = quantize_model(net, weights + mse, progress=False, **static)
        return model, None
    qat = prepare_qat(net, weights, activations=act, learn_scale=method == "qat-lsq")
    curve = train_mlp(qat, data, epochs=qat_epochs, lr=qat_lr, seed=seed + 1)
    return convert(qat), curve
