"""Second-level calibration: clip ranges chosen by what the whole model predicts.

Output-aware ranges (:mod:`numfmt.nn.algorithms.importance`) choose each output channel's clip ratio
by the error of its own layer's output. But the errors of many layers add up, and a layer's output
error is not the model's. This search looks at the model's next-token distribution: starting from
the output-aware ratios, it tries a few factors on them, one group of layers after another, and
keeps the factor whose quantized model is closest to the float model, by the KL divergence between
their next-token distributions on calibration text (the float model's, computed once and kept).

The groups are the layers of one kind (``per="kind"``: every block's ``q_proj`` together,
then every ``k_proj`` ...), each layer on its own (``per="layer"``), or the whole model at
once (``per="model"``). A factor is kept only when it lowers the KL, so the search never ends
worse on its text than where it began, and it is deterministic: the same text gives the same
ranges.

While it searches, the chosen layers hold their quantized values in float (fake
quantization), so each try costs one forward pass over ``tokens`` tokens: groups x (factors
- 1) passes in all, one group's weights at a time changed and every other layer left as
it stands.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from numfmt._display import Displayable
from numfmt.errors import NumfmtError
from numfmt.nn.algorithms.importance import clipped_qparams, output_ratios
from numfmt.nn.progress import Progress, tracker
from numfmt.quant.qparams import dequantize, quantize
from numfmt.quant.schemes import QuantScheme

#: How the layers are grouped, each group sharing one factor.
GROUPINGS = ("kind", "layer", "model")
#: Where the search starts: the output-aware ratios, or the weights' min-max ranges.
STARTS = ("output-mse", "minmax")


@dataclass(frozen=True)
class ModelKL:
    """The search's settings for ``quantize_model(..., algorithm=ModelKL(...))``: the
    factors tried on the starting clip ratios (a ratio stays at most 1), how the layers are
    grouped, how many calibration tokens the KL is measured on, and where it starts: the
    output-aware ratios (``output-mse``), or every range at its min-max (``minmax``: the
    factors are then the clip ratios themselves, and no Hessian is needed)."""

    factors: tuple[float, ...] = (0.9, 0.95, 1.0, 1.05, 1.1)
    per: str = "kind"
    tokens: int = 1024
    start: str = "output-mse"

    def __post_init__(self) -> None:
        factors = tuple(float(f) for f in self.factors)
        if not factors or not all(math.isfinite(f) and f > 0 for f in factors):
            raise NumfmtError(f"the factors are numbers above zero, not {self.factors!r}")
        object.__setattr__(self, "factors", factors)
        if self.per not in GROUPINGS:
            raise NumfmtError(f"per is one of {', '.join(GROUPINGS)}, not {self.per!r}")
        if self.tokens < 1:
            raise NumfmtError(f"tokens is at least 1, not {self.tokens}")
        if self.start not in STARTS:
            raise NumfmtError(f"start is one of {', '.join(STARTS)}, not {self.start!r}")

    def __str__(self) -> str:
        return f"model-kl/{self.per}" + ("/from-minmax" if self.start == "minmax" else "")


@dataclass(frozen=True)
class ClipStep:
    """One group's outcome: its layers, the factor kept, and the model's KL after it."""

    group: str
    layers: int
    factor: float
    kl: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True, eq=False)
class ClipSearch(Displayable):
    """The search: the KL (nats per token, against the float model) with the output-aware
    ratios and after each group's factor was chosen."""

    per: str
    factors: tuple[float, ...]
    steps: tuple[ClipStep, ...]
    kl_start: float
    tokens: int
    evaluations: int
    seconds: float

    @property
    def kl_end(self) -> float:
        return self.steps[-1].kl if self.steps else self.kl_start

    def to_dict(self) -> dict[str, Any]:
        return {
            "per": self.per,
            "factors": list(self.factors),
            "kl_start": self.kl_start,
            "kl_end": self.kl_end,
            "tokens": self.tokens,
            "evaluations": self.evaluations,
            "seconds": self.seconds,
            "steps": [s.to_dict() for s in self.steps],
        }


def group_of(name: str, per: str) -> str:
    """The group a layer's factor is shared in: ``model.layers.3.mlp.up_proj`` is
    ``model.layers.*.mlp.up_proj`` by kind."""
    if per == "model":
        return "*"
    if per == "layer":
        return name
    return re.sub(r"(?<=\.)\d+(?=\.|$)|^\d+(?=\.|$)", "*", name)


def search_ratios(
    model: nn.Module,
    layers: dict[str, tuple[nn.Module, str, QuantScheme, torch.Tensor]],
    hessians: dict[str, torch.Tensor],
    batches: list[Any],
    settings: ModelKL,
    progress: Progress = None,
) -> tuple[dict[str, torch.Tensor], ClipSearch]:
    """Each layer's clip ratios (out,) after the search, and its record.

    Args:
        model: the float model, whose chosen layers' weights are swapped during the search
            and put back before it returns.
        layers: name -> (module, kind, weight scheme, weight in Linear's layout) of the
            Linear and Conv1D layers.
        hessians: name -> the Hessian of the layer's inputs (taken from the dict, to free
            it); not used when the search starts from min-max.
        batches: calibration inputs; the first whole batches up to ``settings.tokens``.
    """

    start = time.perf_counter()
    base, originals = {}, {}
    for name, (module, _, scheme, weight) in layers.items():
        w = weight.detach()
        if settings.start == "minmax":
            base[name] = torch.ones(w.shape[0], dtype=torch.float64, device=w.device)
        else:
            base[name] = output_ratios(w, hessians.pop(name), scheme)
        originals[name] = (module.weight, w)
    inputs = _first_tokens(batches, settings.tokens)

    def put(name: str, factor: float) -> torch.Tensor:
        module, kind, scheme, _ = layers[name]
        w = originals[name][1]
        ratios = torch.clamp(base[name] * factor, max=1.0)
        qp = clipped_qparams(w, scheme, ratios)
        value = dequantize(quantize(w, qp), qp).to(w.dtype)
        module.weight = nn.Parameter(value.T if kind == "conv1d" else value, requires_grad=False)
        return ratios

    groups: dict[str, list[str]] = {}
    for name in layers:
        groups.setdefault(group_of(name, settings.per), []).append(name)
    tries = [f for f in settings.factors if f != 1.0]
    steps = []
    try:
        reference = [_logprobs(model, x) for x in inputs]
        chosen = {name: put(name, 1.0) for name in layers}
        kl = kl_start = _kl(model, inputs, reference)
        with tracker(len(groups) * len(tries), "KL search", progress) as step:
            for group, names in groups.items():
                best, best_kl = 1.0, kl
                for factor in tries:
                    for name in names:
                        put(name, factor)
                    value = _kl(model, inputs, reference)
                    if value < best_kl:
                        best, best_kl = factor, value
                    step(group)
                for name in names:
                    chosen[name] = put(name, best)
                kl = best_kl
                steps.append(ClipStep(group, len(names), best, kl))
    finally:
        for name, (module, *_) in layers.items():
            module.weight = originals[name][0]
    record = ClipSearch(
        per=settings.per,
        factors=settings.factors,
        steps=tuple(steps),
        kl_start=kl_start,
        tokens=sum(_positions(x) for x in inputs),
        evaluations=1 + len(groups) * len(tries),
        seconds=time.perf_counter() - start,
    )
    return chosen, record


def _first_tokens(batches: list[Any], tokens: int) -> list[Any]:
    """The first ``tokens`` positions of the batches: whole batches, the last one cut to the
    rows (sequences) that reach the count."""
    out, count = [], 0
    for batch in batches:
        if count >= tokens:
            break
        rows = batch.shape[0] if batch.dim() > 1 else 1
        per_row = max(1, _positions(batch) // rows)
        need = -(-(tokens - count) // per_row)
        part = batch[:need] if batch.dim() > 1 and need < rows else batch
        out.append(part)
        count += _positions(part)
    return out


def _positions(batch: Any) -> int:
    """Token positions in a batch of ids (batch x tokens), or rows of other inputs."""
    shape = tuple(batch.shape)
    return math.prod(shape) if not torch.is_floating_point(batch) else math.prod(shape[:-1])


def _logprobs(model: nn.Module, batch: Any) -> torch.Tensor:
    with torch.no_grad():
        out = model(batch)
    logits = out.logits if hasattr(out, "logits") else out
    if isinstance(logits, tuple | list):
        logits = logits[0]
    logits = logits.float()
    return torch.log_softmax(logits.reshape(-1, logits.shape[-1]), dim=-1)


def _kl(model: nn.Module, inputs: list[Any], reference: list[torch.Tensor]) -> float:
    """KL(float || quantized) per position, in nats."""
    total = count = 0.0
    for x, ref in zip(inputs, reference, strict=True):
        logp = _logprobs(model, x)
        total += float(torch.sum(ref.exp() * (ref - logp)))
        count += ref.shape[0]
    value = total / count
    if not math.isfinite(value):
        raise NumfmtError("the quantized model's output is not finite on the calibration text")
    return value
