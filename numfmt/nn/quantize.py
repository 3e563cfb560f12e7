"""``quantize_model``: a model's layers through a recipe, into quantized modules, with a report.

A model in memory on the one quantize path (``numfmt.nn.path``): its layers' weights as the
source, the layers swapped in place as the sink, the algorithm's code chooser between."""

from __future__ import annotations

import copy
import time
import warnings
from typing import Any

from torch import nn

from numfmt.errors import NumfmtError, NumfmtWarning
from numfmt.nn.algorithms.calibration import observe_activations
from numfmt.nn.algorithms.chooser import ALGORITHMS, chooser_for
from numfmt.nn.path import ModuleWeights, SwapLayers, quantize_weights
from numfmt.nn.progress import Progress
from numfmt.nn.recipe import Recipe, parse_recipe
from numfmt.nn.report import ModelReport

__all__ = ["ALGORITHMS", "quantize_model"]


def quantize_model(
    model: nn.Module,
    recipe: Recipe | str | dict[str, Any] = "int8/channel",
    calibration: Any = None,
    *,
    inplace: bool = False,
    progress: Progress = None,
    algorithm: Any = "rtn",
    **recipe_args: Any,
) -> tuple[nn.Module, ModelReport]:
    """Quantize a model's weights by a recipe: (the quantized model, its ModelReport).

    Each chosen layer becomes a :class:`QuantLinear` (Linear, Conv1D) or
    :class:`QuantEmbedding` holding packed codes and scales on the model's device. The
    original is left as it was unless ``inplace=True``.

    Args:
        recipe: a named recipe (``int8-absmax``, ``int8-zeropoint``, ``w8a8-token``, ...), a
            scheme string for every layer (``int4/group:128``), a dict of name patterns ->
            schemes (``{"*.down_proj": "int8/channel", "*": "int4/group:128"}``), or a Recipe.
        calibration: inputs (a tensor of token ids, or a list of batches) that set static
            activation ranges: each layer's inputs are observed with the recipe's
            activation scheme (per tensor; its method, minmax or l2_histogram ...), and the
            scales then stay fixed. Without it, W8A8 scales each input on the fly.
        progress: a bar over the layers (None: on a terminal only; or a callable).
        algorithm: ``rtn`` (round to nearest, each weight on its own); ``imatrix`` (round to
            nearest, each group's clip range chosen by the error weighted by how large each
            input is on ``calibration``, see ``numfmt.nn.algorithms.importance``);
            ``output-mse`` (each output channel's clip ratio chosen by the error of the layer's
            output on ``calibration``'s inputs, cross terms included); ``model-kl`` (or a
            ``numfmt.nn.algorithms.model_kl.ModelKL``: those ratios then scaled, group of
            layers by group, to bring the model's next-token distribution closest to the float
            model's, see ``numfmt.nn.algorithms.model_kl``; the search is the report's
            ``search``); or ``gptq`` (or a ``numfmt.nn.algorithms.gptq.GPTQ`` with its
            settings): the Linear layers' codes chosen to keep each layer's output on
            ``calibration``'s inputs (token ids of sample text), see
            ``numfmt.nn.algorithms.gptq``.
        recipe_args: ``kinds``, ``exclude``, ``activations``, ``bias`` (see ``parse_recipe``).

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 8))
        >>> q, report = quantize_model(net, "int4/group:32")
        >>> [type(m).__name__ for m in q], round(report.bits_per_weight, 2)
        (['QuantLinear', 'ReLU', 'QuantLinear'], 5.0)
    """
    r = parse_recipe(recipe, **recipe_args)
    if not isinstance(model, nn.Module):
        raise NumfmtError(f"quantize_model takes a torch module, not a {type(model).__name__}")
    chooser = chooser_for(algorithm, calibration)
    start = time.perf_counter()  # the report's seconds: calibration and copying included
    target = model if inplace else _copy(model, r, shared=chooser.label is None)
    source = ModuleWeights(target)
    if not source.layers:
        raise NumfmtError("the model has no Linear, Conv1D or Embedding layer to quantize")
    names = [n for n, _, _ in source.layers]
    unmatched = r.unmatched(names)
    if unmatched:
        shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
        warnings.warn(
            f"the pattern(s) {', '.join(unmatched)} match no layer; the layers are: {shown}",
            NumfmtWarning,
            stacklevel=2,
        )
    chosen = []
    for name, module, kind in source.layers:
        scheme, _ = r.decide(name, kind)
        if scheme is not None:
            chosen.append((name, module, kind, scheme))
    calibrated = chooser.label is not None
    observe = calibration is not None and (not calibrated or r.activations is not None)
    static = observe_activations(target, chosen, r, calibration) if observe else {}
    chooser.prepare(target, chosen, progress)
    label = str(r) if chooser.label is None else f"{r} + {chooser.label}"
    report = quantize_weights(
        source,
        r,
        SwapLayers(target, r, static),
        chooser,
        progress=progress,
        label=label,
        search=chooser.search,
        start=start,
    )
    return target, report


def _copy(model: nn.Module, recipe: Recipe, *, shared: bool) -> nn.Module:
    """A copy of the model to quantize. With ``shared`` (round to nearest, which only reads
    the weights) the float weights of the layers the recipe quantizes are not copied: the
    copy's layers point at the original's until they are replaced by their quantized layers,
    and the original is never written. Every other tensor is copied (a weight also held by a
    layer kept in float, tied, included)."""
    memo: dict[int, Any] = {}
    if shared:
        layers = ModuleWeights(model).layers
        chosen = [m for n, m, k in layers if recipe.decide(n, k)[0] is not None]
        quantized = {id(m) for m in chosen}
        kept = {
            id(p)
            for m in model.modules()
            if id(m) not in quantized
            for p in m.parameters(recurse=False)
        }
        for module in chosen:
            w = module.weight
            if id(w) not in kept:
                memo[id(w)] = w
    return copy.deepcopy(model, memo)
