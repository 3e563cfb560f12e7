"""Training in fewer bits, measured: the digits MLP with its weights and gradients in bf16 and
fp16.

Every run starts from the same initial weights and sees the same batches (Adam, learning rate
1e-3); only where the numbers are stored changes (``numfmt.nn.training``):

=====================  ==========================================================================
``fp32``               everything in float32: the reference
``bf16-nearest``       weights stored in bf16, each new weight rounded to nearest
``bf16-stochastic``    ... rounded stochastically (seeded)
``bf16-kahan``         ... with Kahan's compensation (a float32 buffer per weight)
``bf16-master``        float32 master weights; the model computes with their bf16 rounding
``mixed-fp16``         mixed precision as Micikevicius et al. describe it: float32 master
                       weights, the model's weights and the gradients in fp16, no loss scaling
``mixed-fp16-scaled``  the same with dynamic loss scaling (torch.amp.GradScaler's rules)
``mixed-bf16``         the same in bf16, without loss scaling
=====================  ==========================================================================

The float32 run also records every weight gradient it computes, as counts of their binary
exponents, and the lesson sets those against the range of each 16-bit format: how many fall
below fp16's smallest subnormal (2^-24) and bf16's (2^-133), and how many would overflow
once multiplied by GradScaler's initial scale of 2^16.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import torch
from torch import nn

from numfmt._display import Displayable
from numfmt.errors import NumfmtError
from numfmt.formats import FloatFormat, get_format
from numfmt.lessons.digits import WIDTHS, Digits, accuracy, load_digits, mlp
from numfmt.nn.progress import Progress, say, tracker
from numfmt.nn.training import LossScaler, LowPrecisionOptimizer


@dataclass(frozen=True)
class RunSpec:
    """One way of storing the numbers: the weight format and update rule, the gradient
    format (None: float32), and whether the loss is scaled dynamically."""

    name: str
    weights: str
    update: str
    grads: str | None
    loss_scaling: bool
    meaning: str


#: The runs, in the order of the lesson's table.
RUNS = (
    RunSpec("fp32", "fp32", "nearest", None, False, "everything in float32"),
    RunSpec("bf16-nearest", "bf16", "nearest", None, False, "bf16 weights, rounded to nearest"),
    RunSpec(
        "bf16-stochastic", "bf16", "stochastic", None, False, "bf16 weights, stochastic rounding"
    ),
    RunSpec("bf16-kahan", "bf16", "kahan", None, False, "bf16 weights, Kahan compensation"),
    RunSpec("bf16-master", "bf16", "master", None, False, "fp32 master weights, bf16 model"),
    RunSpec("mixed-fp16", "fp16", "master", "fp16", False, "fp32 master, fp16 model and gradients"),
    RunSpec(
        "mixed-fp16-scaled", "fp16", "master", "fp16", True, "the same, with dynamic loss scaling"
    ),
    RunSpec("mixed-bf16", "bf16", "master", "bf16", False, "fp32 master, bf16 model and gradients"),
)
RUN_NAMES = tuple(r.name for r in RUNS)
#: The formats whose ranges the lesson sets the gradients against.
RANGE_FORMATS = ("fp16", "bf16", "fp32")
#: GradScaler's initial scale.
INIT_SCALE = 2.0**16


@dataclass(frozen=True)
class TrainingRun:
    """One run's outcome: test accuracy and the last epoch's mean training loss, the
    optimizer's totals (``numfmt.nn.training.TrainingStats``), the loss scale it ended with
    (None without scaling) and the curve (per epoch: mean training loss, test accuracy)."""

    name: str
    weights: str
    update: str
    grads: str | None
    loss_scaling: bool
    accuracy: float
    loss: float
    steps: int
    skipped: int
    updates: int
    lost: int
    gradients: int
    underflowed: int
    overflowed: int
    final_scale: float | None
    curve: list[tuple[float, float]]

    @property
    def lost_share(self) -> float:
        return self.lost / self.updates if self.updates else 0.0

    @property
    def underflow_share(self) -> float:
        return self.underflowed / self.gradients if self.gradients else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "weights": self.weights,
            "update": self.update,
            "grads": self.grads,
            "loss_scaling": self.loss_scaling,
            "accuracy": self.accuracy,
            "loss": self.loss,
            "steps": self.steps,
            "skipped": self.skipped,
            "updates": self.updates,
            "lost": self.lost,
            "lost_share": self.lost_share,
            "gradients": self.gradients,
            "underflowed": self.underflowed,
            "underflow_share": self.underflow_share,
            "overflowed": self.overflowed,
            "final_scale": self.final_scale,
            "curve": [
                {"epoch": i + 1, "loss": loss, "accuracy": acc}
                for i, (loss, acc) in enumerate(self.curve)
            ],
        }


@dataclass(frozen=True)
class GradientHistogram:
    """The float32 run's weight gradients, every step's: how many had each binary exponent
    (``counts[i]`` values in [2^e, 2^(e+1)) for ``e = exponents[i]``), how many were zero, and
    the smallest and largest nonzero magnitude."""

    exponents: list[int]
    counts: list[int]
    zeros: int
    smallest: float
    largest: float

    @property
    def nonzero(self) -> int:
        return sum(self.counts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "exponents": self.exponents,
            "counts": self.counts,
            "zeros": self.zeros,
            "smallest": self.smallest,
            "largest": self.largest,
        }


@dataclass(frozen=True)
class FormatRange:
    """A format's range beside the float32 run's nonzero gradients: its smallest subnormal,
    smallest normal and largest value; the share of gradients below the first two; how many
    would round to inf (or NaN) once multiplied by the initial loss scale; and the loss
    scales 2^k that would keep every one of them nonzero and finite, k from ``fit_low`` to
    ``fit_high`` (None where no scale does)."""

    format: str
    smallest: float
    min_normal: float
    largest: float
    below_smallest: float
    below_normal: float
    overflow_scaled: int
    fit_low: int | None
    fit_high: int | None

    @property
    def binades(self) -> float:
        """log2(largest / smallest): how many powers of two the format spans."""
        return math.log2(self.largest / self.smallest)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "smallest": self.smallest,
            "min_normal": self.min_normal,
            "largest": self.largest,
            "binades": self.binades,
            "below_smallest": self.below_smallest,
            "below_normal": self.below_normal,
            "overflow_scaled": self.overflow_scaled,
            "fit_low": self.fit_low,
            "fit_high": self.fit_high,
        }


@dataclass(frozen=True, eq=False)
class TrainingInFewerBits(Displayable):
    """The lesson's result: a row per run (fp32 first), the float32 run's gradient histogram,
    and the 16-bit formats' ranges against those gradients."""

    rows: tuple[TrainingRun, ...]
    histogram: GradientHistogram
    ranges: tuple[FormatRange, ...]
    config: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def run(self, name: str) -> TrainingRun:
        """One run's row, by name (``bf16-nearest`` ...)."""
        for r in self.rows:
            if r.name == name:
                return r
        raise NumfmtError(f"the lesson has no run {name!r}; it ran {', '.join(self.names)}")

    def range(self, fmt: str) -> FormatRange:
        """One format's range row (``fp16``, ``bf16``, ``fp32``)."""
        name = get_format(fmt).name
        for r in self.ranges:
            if r.format == name:
                return r
        raise NumfmtError(f"the lesson has no range row for {fmt!r}")

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.rows]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": [r.to_dict() for r in self.rows],
            "histogram": self.histogram.to_dict(),
            "ranges": [r.to_dict() for r in self.ranges],
            "config": self.config,
            "seconds": self.seconds,
        }


class _Exponents:
    """Counts of gradient elements by binary exponent, and of those a format's range misses."""

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.zeros = 0
        self.overflow: dict[str, int] = dict.fromkeys(RANGE_FORMATS, 0)
        self.smallest = math.inf
        self.largest = 0.0

    def add(self, grads: torch.Tensor) -> None:
        a = grads.detach().abs().reshape(-1)
        self.zeros += int((a == 0).sum())
        a = a[a > 0]
        if not a.numel():
            return
        self.smallest = min(self.smallest, float(a.min()))
        self.largest = max(self.largest, float(a.max()))
        _, e = torch.frexp(a)  # a = m * 2^e, m in [0.5, 1): the binary exponent is e - 1
        values, counts = torch.unique(e - 1, return_counts=True)
        for v, c in zip(values.tolist(), counts.tolist(), strict=True):
            self.counts[v] = self.counts.get(v, 0) + c
        scaled = a.double() * INIT_SCALE
        for name, threshold in _THRESHOLDS.items():
            self.overflow[name] += int((scaled >= threshold).sum())

    def histogram(self) -> GradientHistogram:
        if not self.counts:
            return GradientHistogram([], [], self.zeros, 0.0, 0.0)
        exponents = list(range(min(self.counts), max(self.counts) + 1))
        counts = [self.counts.get(e, 0) for e in exponents]
        return GradientHistogram(exponents, counts, self.zeros, self.smallest, self.largest)

    def fitting_scales(self, fmt: FloatFormat) -> tuple[int | None, int | None]:
        """(lowest, highest) k such that every gradient times 2^k is at least the format's
        smallest subnormal and rounds below inf; (None, None) where no k does."""
        if not self.counts:
            return None, None
        low = -_floor_log2(Fraction(self.smallest) / _smallest(fmt))
        high = _floor_log2(_overflow_threshold(fmt) / Fraction(self.largest), below=True)
        return (low, high) if low <= high else (None, None)

    def below(self, threshold: float) -> float:
        """The share of nonzero gradients below a power of two."""
        e = int(math.log2(threshold))
        total = sum(self.counts.values())
        return sum(c for k, c in self.counts.items() if k < e) / total if total else 0.0


def _floor_log2(x: Fraction, *, below: bool = False) -> int:
    """The largest k with 2^k <= x (with ``below``: 2^k < x)."""
    k = x.numerator.bit_length() - x.denominator.bit_length()
    while Fraction(2) ** k > x:
        k -= 1
    while Fraction(2) ** (k + 1) <= x:
        k += 1
    return k - 1 if below and Fraction(2) ** k == x else k


def _smallest(fmt: FloatFormat) -> Fraction:
    return Fraction(2) ** (fmt.emin - fmt.mantissa_bits)


def _overflow_threshold(fmt: FloatFormat) -> Fraction:
    """The smallest magnitude that rounds to inf (or NaN) in the format, to nearest even: its
    largest value plus half an ulp there."""
    return Fraction(fmt.max_value) + Fraction(2) ** (fmt.emax - fmt.mantissa_bits - 1)


def _float(name: str) -> FloatFormat:
    fmt = get_format(name)
    assert isinstance(fmt, FloatFormat)
    return fmt


#: Where each range format overflows, as float64 (exact for these formats).
_THRESHOLDS = {name: float(_overflow_threshold(_float(name))) for name in RANGE_FORMATS}


def _ranges(counts: _Exponents) -> tuple[FormatRange, ...]:
    rows = []
    for name in RANGE_FORMATS:
        fmt = _float(name)
        smallest = float(_smallest(fmt))
        rows.append(
            FormatRange(
                fmt.name,
                smallest,
                float(fmt.min_normal),
                float(fmt.max_value),
                counts.below(smallest),
                counts.below(float(fmt.min_normal)),
                counts.overflow[name],
                *counts.fitting_scales(fmt),
            )
        )
    return tuple(rows)


def _train(
    spec: RunSpec,
    data: Digits,
    *,
    epochs: int,
    lr: float,
    seed: int,
    batch: int,
    record: Callable[[torch.Tensor], None] | None = None,
) -> TrainingRun:
    """Train a fresh MLP (the same initial weights for every run) with one way of storing it."""
    net = mlp(seed).to(data.x_train.device)
    inner = torch.optim.Adam(net.parameters(), lr=lr)
    opt = LowPrecisionOptimizer(
        inner, spec.weights, update=spec.update, grads=spec.grads, seed=seed
    )
    scaler = LossScaler(INIT_SCALE) if spec.loss_scaling else None
    order = torch.Generator().manual_seed(seed)
    n = len(data.y_train)
    curve = []
    for _ in range(epochs):
        net.train()
        perm = torch.randperm(n, generator=order).to(data.x_train.device)
        total = torch.zeros((), device=data.x_train.device)
        for start in range(0, n, batch):
            idx = perm[start : start + batch]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(net(data.x_train[idx]), data.y_train[idx])
            (loss if scaler is None else scaler.scale(loss)).backward()
            if record is not None:
                record(
                    torch.cat([p.grad.reshape(-1) for p in net.parameters() if p.grad is not None])
                )
            if scaler is None:
                opt.step()
            else:
                scaler.step(opt)
                scaler.update()
            total += loss.detach() * len(idx)
        curve.append((float(total.item()) / n, accuracy(net, data)))
    stats = opt.stats
    return TrainingRun(
        spec.name,
        stats.weights,
        spec.update,
        stats.grads,
        spec.loss_scaling,
        curve[-1][1],
        curve[-1][0],
        stats.taken,
        stats.skipped,
        stats.updates,
        stats.lost,
        stats.gradients,
        stats.underflowed,
        stats.overflowed,
        None if scaler is None else scaler.get_scale(),
        curve,
    )


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """torch in one thread while the lesson trains: its matrices (64 x 32) are too small for
    threads to help, and on a busy machine the threads' waits made a run ten times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def training_in_fewer_bits(
    *,
    runs: Sequence[str] = RUN_NAMES,
    epochs: int = 30,
    lr: float = 1e-3,
    seed: int = 0,
    batch: int = 64,
    device: str | torch.device = "cpu",
    progress: Progress = None,
) -> TrainingInFewerBits:
    """Train the digits MLP once per way of storing its numbers, from the same start.

    Args:
        runs: a subset of ``RUN_NAMES`` (``fp32`` is always run: its gradients make the
            histogram).
        epochs, lr, batch: Adam's training, the same for every run.
        seed: seeds the split, the initial weights, the batches' order and stochastic rounding.
        progress: a bar over the runs on a terminal (None: there only; True: and a line per
            run on stderr elsewhere; False: never; or a callable, called with each run's name).

    Raises:
        NumfmtError: an unknown run, epochs below 1, a learning rate that is not a finite
            number > 0, a batch below 1.

    Example:
        >>> r = training_in_fewer_bits(runs=["bf16-nearest"], epochs=2)  # doctest: +SKIP
        >>> r.run("bf16-nearest").lost_share > 0.2  # doctest: +SKIP
        True
    """
    unknown = [r for r in runs if r not in RUN_NAMES]
    if unknown:
        raise NumfmtError(f"unknown run {unknown[0]!r}; the runs are {', '.join(RUN_NAMES)}")
    for name, value in (("epochs", epochs), ("batch", batch)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise NumfmtError(f"{name} is a whole number of at least 1, not {value!r}")
    if not isinstance(lr, int | float) or not math.isfinite(lr) or lr <= 0:
        raise NumfmtError(f"the learning rate is a finite number > 0, not {lr!r}")
    start = time.perf_counter()
    data = load_digits(seed, device)
    chosen = [spec for spec in RUNS if spec.name == "fp32" or spec.name in runs]
    counts = _Exponents()
    each = f"{epochs} epoch{'s' if epochs != 1 else ''} each"
    say(f"training: the digits MLP {len(chosen)} ways, {each} ...", progress)
    rows = []
    with _one_thread(), tracker(len(chosen), "training", progress, every=0) as step:
        for spec in chosen:
            record = counts.add if spec.name == "fp32" else None
            rows.append(
                _train(spec, data, epochs=epochs, lr=lr, seed=seed, batch=batch, record=record)
            )
            step(spec.name)
    config = {
        "dataset": "scikit-learn digits (8x8, 1,797 images)",
        "train": len(data.y_train),
        "test": len(data.y_test),
        "widths": list(WIDTHS),
        "optimizer": "Adam",
        "lr": lr,
        "epochs": epochs,
        "batch": batch,
        "init_scale": INIT_SCALE,
        "seed": seed,
        "device": str(device),
    }
    return TrainingInFewerBits(
        tuple(rows), counts.histogram(), _ranges(counts), config, time.perf_counter() - start
    )
