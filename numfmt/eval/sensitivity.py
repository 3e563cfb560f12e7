"""Which layers a recipe hurts: each quantized alone, its cost measured on the model's output.

``sensitivity(model, recipe, ids)`` quantizes one layer at a time (the rest stay float), scores
the model on the same windows of ``ids`` against the float model's own next-token
distributions, and ranks the layers by the KL divergence they cause alone (nats per token;
the perplexity and top-1 agreement beside it). The model is changed one layer at a time and
put back after each, and as it was at the end, also when something fails.

``allocate(result, budget, high=...)`` turns the ranking into a mixed-precision recipe: the
most sensitive layers (by KL per extra bit they would cost) move to the ``high`` scheme until
the bits per weight reach ``budget``. The recipe is an ordinary dict of layer names, for
``quantize_model``, whose perplexity the caller measures.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, cast

from torch import nn

from numfmt._display import Displayable
from numfmt.errors import NumfmtError
from numfmt.eval.memory import scheme_bits
from numfmt.eval.scoring import reference_logprobs, score
from numfmt.nn.layers import candidates, linear_weight
from numfmt.nn.modules import QuantEmbedding, QuantLinear
from numfmt.nn.progress import Progress, tracker
from numfmt.nn.quantize import quantize_model
from numfmt.nn.recipe import parse_recipe
from numfmt.quant.qparams import as_scheme
from numfmt.quant.schemes import QuantScheme
from numfmt.quant.tensor import quantize_tensor


@dataclass(frozen=True)
class LayerCost:
    """One layer quantized alone: its weights, their storage bits, and the model's KL from
    float (nats per token), perplexity and top-1 agreement."""

    name: str
    kind: str
    shape: tuple[int, int]
    scheme: str
    bits_per_weight: float
    kl: float
    perplexity: float
    top1: float

    @property
    def parameters(self) -> int:
        return self.shape[0] * self.shape[1]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__, shape=list(self.shape), parameters=self.parameters)


@dataclass(frozen=True)
class Allocation:
    """A mixed-precision recipe from a sensitivity ranking, measured: the layers moved to
    ``high``, the bits per weight over the measured layers, and the model's perplexity and KL
    beside the uniform recipe's."""

    budget: float
    high: str
    promoted: tuple[str, ...]
    recipe: dict[str, str]
    bits_per_weight: float
    perplexity: float
    kl: float
    uniform_bits_per_weight: float
    uniform_perplexity: float
    uniform_kl: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__, promoted=list(self.promoted))


@dataclass(frozen=True, eq=False)
class Sensitivity(Displayable):
    """The layers ranked by the cost of quantizing each alone (the worst first), and the
    float model's perplexity on the same tokens; with ``allocation`` a mixed-precision
    recipe made from the ranking and measured."""

    recipe: str
    layers: tuple[LayerCost, ...]
    float_perplexity: float
    tokens: int
    seconds: float
    allocation: Allocation | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe,
            "float_perplexity": self.float_perplexity,
            "tokens": self.tokens,
            "seconds": self.seconds,
            "layers": [layer.to_dict() for layer in self.layers],
            "allocation": None if self.allocation is None else self.allocation.to_dict(),
        }


def _swap(model: nn.Module, name: str, module: nn.Module, kind: str, scheme: QuantScheme):
    """Put the quantized copy of one layer in its place; its storage bits per weight."""
    w = linear_weight(module, kind)
    qt = quantize_tensor(w, scheme)
    if kind == "embedding":
        new: nn.Module = QuantEmbedding(qt, cast(nn.Embedding, module).padding_idx)
    else:
        new = QuantLinear(qt, getattr(module, "bias", None), source=kind)
    model.set_submodule(name, new)
    return qt.bits_per_value


def _chosen(model: nn.Module, recipe: Any, **recipe_args: Any) -> tuple[Any, list]:
    r = parse_recipe(recipe, **recipe_args)
    chosen = []
    for name, module, kind in candidates(model):
        scheme = r.scheme_for(name)
        if scheme is not None and kind in r.kinds:
            chosen.append((name, module, kind, scheme))
    if not chosen:
        raise NumfmtError(f"the recipe {r} quantizes no layer of this model")
    return r, chosen


def check_budget(model: nn.Module, recipe: Any, budget: float, **recipe_args: Any) -> float:
    """The bits per weight the recipe itself takes over the layers it quantizes; a budget
    below it is refused (before any measuring)."""
    _, chosen = _chosen(model, recipe, **recipe_args)
    total = used = 0.0
    for _, module, kind, scheme in chosen:
        shape = tuple(linear_weight(module, kind).shape)
        total += shape[0] * shape[1]
        used += scheme_bits(scheme, shape) * shape[0] * shape[1]
    floor = used / total
    if budget < floor - 1e-9:
        raise NumfmtError(
            f"a budget of {budget:g} bits per weight is below the recipe's own "
            f"{floor:.3f}: nothing can fit"
        )
    return floor


def sensitivity(
    model: nn.Module,
    recipe: Any,
    ids: Any,
    *,
    context: int = 512,
    progress: Progress = None,
    **recipe_args: Any,
) -> Sensitivity:
    """Each layer the recipe would quantize, quantized alone and scored on ``ids`` (token
    ids: a few windows are enough to rank; more to measure).

    Examples:
        >>> import torch
        >>> from transformers import LlamaConfig, LlamaForCausalLM
        >>> config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64,
        ...     num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1)
        >>> _ = torch.manual_seed(0)
        >>> s = sensitivity(LlamaForCausalLM(config), "int2/channel", torch.randint(0, 64, (64,)),
        ...     context=32, progress=False)
        >>> len(s.layers), s.layers[0].kl >= s.layers[-1].kl
        (7, True)
    """
    r, chosen = _chosen(model, recipe, **recipe_args)
    start = time.perf_counter()
    reference = reference_logprobs(model, ids, context=context)
    base = score(model, ids, context=context)
    rows = []
    with tracker(len(chosen), "measuring", progress) as step:
        for name, module, kind, scheme in chosen:
            try:
                bits = _swap(model, name, module, kind, scheme)
                s = score(model, ids, context=context, reference=reference, name=name)
            finally:
                model.set_submodule(name, module)
            assert s.kl is not None and s.top1 is not None  # scored against the reference
            rows.append(
                LayerCost(
                    name=name,
                    kind=kind,
                    shape=cast("tuple[int, int]", tuple(linear_weight(module, kind).shape)),
                    scheme=str(scheme),
                    bits_per_weight=bits,
                    kl=float(s.kl),
                    perplexity=s.perplexity,
                    top1=float(s.top1),
                )
            )
            step(name)
    rows.sort(key=lambda row: -row.kl)
    return Sensitivity(
        recipe=str(r),
        layers=tuple(rows),
        float_perplexity=base.perplexity,
        tokens=base.tokens,
        seconds=time.perf_counter() - start,
    )


def allocate(
    result: Sensitivity, budget: float, *, high: str | QuantScheme = "int8/channel"
) -> dict[str, Any]:
    """A mixed-precision recipe within ``budget`` bits per weight: the layers whose KL per
    extra bit is largest take ``high``, the others keep their scheme from the sensitivity
    run, in order, while the average over the measured layers stays within the budget.

    Returns a dict recipe (layer name -> scheme) for ``quantize_model``.
    """

    high_scheme = as_scheme(high)
    layers = list(result.layers)
    if not layers:
        raise NumfmtError("the sensitivity result measured no layer")
    total = sum(layer.parameters for layer in layers)
    used = sum(layer.parameters * layer.bits_per_weight for layer in layers)
    floor = used / total
    if budget < floor - 1e-9:
        raise NumfmtError(
            f"a budget of {budget:g} bits per weight is below the recipe's own "
            f"{floor:.3f}: nothing can fit"
        )
    extra = {
        layer.name: scheme_bits(high_scheme, layer.shape) - layer.bits_per_weight
        for layer in layers
    }
    order = sorted(
        layers, key=lambda layer: -layer.kl / max(extra[layer.name] * layer.parameters, 1)
    )
    recipe: dict[str, Any] = {}
    for layer in order:
        cost = extra[layer.name] * layer.parameters
        if cost <= 0:
            continue
        if (used + cost) / total <= budget + 1e-12:
            recipe[layer.name] = str(high_scheme)
            used += cost
    for layer in layers:
        recipe.setdefault(layer.name, layer.scheme)
    return recipe


def mixed_precision(
    model: nn.Module,
    result: Sensitivity,
    ids: Any,
    budget: float,
    *,
    high: str | QuantScheme = "int8/channel",
    context: int = 512,
    progress: Progress = None,
) -> Sensitivity:
    """The sensitivity result with its :class:`Allocation`: the recipe :func:`allocate`
    makes within ``budget``, quantized and scored on ``ids`` beside the uniform recipe."""

    recipe = allocate(result, budget, high=high)
    reference = reference_logprobs(model, ids, context=context)
    uniform = {layer.name: layer.scheme for layer in result.layers}
    scored = {}
    for label, r in (("mixed", recipe), ("uniform", uniform)):
        q, report = quantize_model(model, {**r, "*": None}, progress=progress)
        s = score(q, ids, context=context, reference=reference, name=label)
        scored[label] = (report.bits_per_weight, s)
        del q

    high_name = str(as_scheme(high))
    promoted = tuple(n for n, v in recipe.items() if v != uniform[n])
    (bits, mixed), (ubits, flat) = scored["mixed"], scored["uniform"]
    assert mixed.kl is not None and flat.kl is not None  # scored against the reference
    allocation = Allocation(
        budget=budget,
        high=high_name,
        promoted=promoted,
        recipe=recipe,
        bits_per_weight=bits,
        perplexity=mixed.perplexity,
        kl=float(mixed.kl),
        uniform_bits_per_weight=ubits,
        uniform_perplexity=flat.perplexity,
        uniform_kl=float(flat.kl),
    )
    return replace(result, allocation=allocation)
