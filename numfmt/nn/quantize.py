"""``quantize_model``: a model's layers through a recipe, into quantized modules, with a report."""

from __future__ import annotations

import copy
import time
import warnings
from typing import Any

import torch
from torch import nn

from numfmt.errors import NumfmtError, NumfmtWarning
from numfmt.nn.modules import QuantEmbedding, QuantLinear
from numfmt.nn.progress import Progress, tracker
from numfmt.nn.recipe import Recipe, parse_recipe
from numfmt.nn.report import LayerRow, ModelReport
from numfmt.quant.tensor import QuantizedTensor, quantize_tensor


def layer_kind(module: nn.Module) -> str | None:
    """``linear``, ``conv1d`` (transformers' Conv1D: a Linear with the weight transposed),
    ``embedding``, or None for a module a recipe does not quantize."""
    if isinstance(module, nn.Linear):
        return "linear"
    if type(module).__name__ == "Conv1D" and hasattr(module, "nf") and module.weight.dim() == 2:
        return "conv1d"
    if isinstance(module, nn.Embedding):
        return "embedding"
    return None


def linear_weight(module: nn.Module, kind: str) -> torch.Tensor:
    """The weight in Linear's layout (out_features, in_features): Conv1D's is transposed."""
    w = module.weight.detach()
    return w.t() if kind == "conv1d" else w


def candidates(model: nn.Module) -> list[tuple[str, nn.Module, str]]:
    """(name, module, kind) of every layer a recipe could quantize, in the model's order."""
    out = []
    for name, module in model.named_modules():
        kind = layer_kind(module)
        if kind is not None:
            out.append((name, module, kind))
    return out


def _tied(model: nn.Module) -> dict[int, list[str]]:
    """Parameters held by more than one module: data pointer -> names."""
    seen: dict[int, list[str]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        seen.setdefault(p.data_ptr(), []).append(name)
    return {k: v for k, v in seen.items() if len(v) > 1}


def model_bytes(model: nn.Module) -> tuple[int, int]:
    """(bytes, parameters) of every parameter and buffer, each storage counted once."""
    seen: set[int] = set()
    total = count = 0
    for t in [*model.parameters(), *model.buffers()]:
        if t is None or t.data_ptr() in seen:
            continue
        seen.add(t.data_ptr())
        total += t.numel() * t.element_size()
        count += t.numel() if t.is_floating_point() else 0
    return total, count


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
            input is on ``calibration``, see ``numfmt.nn.algorithms.importance``); ``output-mse`` (each
            output channel's clip ratio chosen by the error of the layer's output on
            ``calibration``'s inputs, cross terms included); ``model-kl`` (or a
            ``numfmt.nn.algorithms.model_kl.ModelKL``: those ratios then scaled, group of layers by
            group, to bring the model's next-token distribution closest to the float
            model's, see ``numfmt.nn.algorithms.model_kl``; the search is the report's ``search``); or
            ``gptq`` (or a
            ``numfmt.nn.algorithms.gptq.GPTQ`` with its settings): the Linear layers' codes chosen to
            keep each layer's output on ``calibration``'s inputs (token ids of sample text),
            see ``numfmt.nn.algorithms.gptq``.
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
    gptq = _algorithm(algorithm, calibration)
    start = time.perf_counter()
    before, parameters = model_bytes(model)
    target = model if inplace else copy.deepcopy(model)
    found = candidates(target)
    if not found:
        raise NumfmtError("the model has no Linear, Conv1D or Embedding layer to quantize")
    names = [n for n, _, _ in found]
    unmatched = r.unmatched(names)
    if unmatched:
        shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
        warnings.warn(
            f"the pattern(s) {', '.join(unmatched)} match no layer; the layers are: {shown}",
            NumfmtWarning,
            stacklevel=2,
        )
    tied = {n for group in _tied(target).values() for n in group}
    chosen, kept = [], []
    for name, module, kind in found:
        scheme = r.scheme_for(name)
        if kind not in r.kinds:
            if scheme is not None and not r.is_float and kind == "embedding":
                kept.append((name, "embeddings are left in float unless kinds includes them"))
            continue
        if scheme is None:
            if not r.is_float:
                why = r.why_float(name)
                if f"{name}.weight" in tied:
                    why += " (its weight is tied to another layer's)"
                kept.append((name, why))
            continue
        chosen.append((name, module, kind, scheme))
    observe = calibration is not None and (gptq is None or r.activations is not None)
    static = _observe(target, chosen, r, calibration) if observe else {}
    hessians = _hessians(target, chosen, calibration, progress, gptq) if _needs(gptq) else {}
    clip, search = _model_kl(target, chosen, hessians, calibration, gptq, progress)
    rows = []
    with tracker(len(chosen), "quantizing", progress) as step:
        for name, module, kind, scheme in chosen:
            w = linear_weight(module, kind)
            if name in clip:
                from numfmt.nn.algorithms.importance import clipped_qparams
                from numfmt.quant.qparams import quantize

                qp = clipped_qparams(w, scheme, clip.pop(name))
                qt = QuantizedTensor(quantize(w, qp), qp, str(w.dtype).removeprefix("torch."))
            elif name in hessians and gptq in ("imatrix", "output-mse"):
                from numfmt.nn.algorithms import importance
                from numfmt.quant.qparams import quantize

                pick = (
                    importance.weighted_qparams if gptq == "imatrix" else importance.output_qparams
                )
                qp = pick(w, hessians.pop(name), scheme)
                qt = QuantizedTensor(quantize(w, qp), qp, str(w.dtype).removeprefix("torch."))
            elif name in hessians:
                from numfmt.nn.algorithms.gptq import gptq_weight

                qt = gptq_weight(
                    w,
                    hessians.pop(name),
                    scheme,
                    damp=gptq.damp,
                    block=gptq.block,
                    act_order=gptq.act_order,
                    weighted_ranges=gptq.weighted_ranges,
                    name=name,
                )
            else:
                qt = quantize_tensor(w, scheme)
            rows.append(
                LayerRow.measure(
                    name,
                    kind,
                    w,
                    qt,
                    bytes_before=w.numel() * w.element_size(),
                    bytes_after=qt.nbytes,
                )
            )
            if kind == "embedding":
                new: nn.Module = QuantEmbedding(qt, module.padding_idx)
            else:
                bias = getattr(module, "bias", None)
                new = QuantLinear(
                    qt,
                    bias,
                    activations=static.get(name, r.activations),
                    source=kind,
                    bias_mode=r.bias,
                )
            target.set_submodule(name, new)
            step(name)
    after = before - sum(r.bytes_before for r in rows) + sum(r.bytes_after for r in rows)
    seconds = time.perf_counter() - start
    label = str(r) if gptq is None else f"{r} + {gptq}"
    report = ModelReport(
        label, tuple(rows), tuple(kept), before, after, parameters, seconds, search=search
    )
    return target, report


#: The algorithms quantize_model takes by name.
ALGORITHMS = ("rtn", "imatrix", "output-mse", "model-kl", "gptq")


def _algorithm(algorithm: Any, calibration: Any):
    """None for round-to-nearest, ``imatrix``, ``output-mse``, or the GPTQ or ModelKL
    settings (calibration required for all but round-to-nearest)."""
    from numfmt.nn.algorithms.gptq import GPTQ
    from numfmt.nn.algorithms.model_kl import ModelKL

    if algorithm == "rtn":
        return None
    if algorithm == "gptq":
        algorithm = GPTQ()
    if algorithm == "model-kl":
        algorithm = ModelKL()
    if not isinstance(algorithm, GPTQ | ModelKL) and algorithm not in ("imatrix", "output-mse"):
        raise NumfmtError(
            f"the algorithm is one of {', '.join(ALGORITHMS)} (or a GPTQ or ModelKL), not "
            f"{algorithm!r}"
        )
    if calibration is None:
        raise NumfmtError(
            f"{algorithm} weighs each layer's error by its inputs: give calibration (token "
            "ids of sample text, a few thousand tokens)"
        )
    return algorithm


def _hessians(model: nn.Module, chosen: list, calibration: Any, progress: Progress, algorithm):
    """The inputs' Hessians of the chosen Linear layers (embeddings are looked up: RTN), or
    for ``imatrix`` their diagonals."""
    from numfmt.nn.algorithms.gptq import GPTQ, check_scheme, input_hessians
    from numfmt.nn.algorithms.importance import check_int_grid

    layers = {}
    for name, module, kind, scheme in chosen:
        if kind != "embedding":
            if isinstance(algorithm, GPTQ):
                check_scheme(scheme)
            else:
                check_int_grid(scheme, f"{algorithm}'s ranges")
            layers[name] = module
    diagonal = algorithm == "imatrix"
    return input_hessians(model, layers, _batches(calibration), progress, diagonal=diagonal)


def _needs(algorithm) -> bool:
    """Whether the algorithm needs the inputs' Hessians (all but RTN and a min-max start)."""
    return bool(algorithm) and getattr(algorithm, "start", None) != "minmax"


def _model_kl(model, chosen, hessians, calibration, algorithm, progress):
    """For ``model-kl``: each Linear layer's clip ratios after the search, and its record."""
    from numfmt.nn.algorithms.importance import check_int_grid
    from numfmt.nn.algorithms.model_kl import ModelKL, search_ratios

    if not isinstance(algorithm, ModelKL):
        return {}, None
    layers = {}
    for name, m, kind, s in chosen:
        if kind != "embedding":
            check_int_grid(s, f"{algorithm}'s ranges")
            layers[name] = (m, kind, s, linear_weight(m, kind))
    return search_ratios(model, layers, hessians, _batches(calibration), algorithm, progress)


def _batches(calibration: Any) -> list[Any]:
    if isinstance(calibration, torch.Tensor):
        return [calibration if calibration.dim() > 1 else calibration[None, :]]
    batches = list(calibration)
    if not batches:
        raise NumfmtError("the calibration data is empty")
    return batches


def _observe(model: nn.Module, chosen: list, recipe: Recipe, calibration: Any) -> dict[str, Any]:
    """Static activation ranges: each chosen layer's inputs over the calibration batches,
    through the quantization layer's Observer (its method: minmax, percentile, l2_histogram
    ...), run on the model before any layer is quantized. name -> QParams."""
    from numfmt.quant.granularity import PerToken
    from numfmt.quant.observer import Observer

    scheme = recipe.activations
    if scheme is None:
        raise NumfmtError(
            "calibration sets static activation ranges, and the recipe quantizes no "
            "activations: use w8a8-tensor, or activations='int8/l2_histogram'"
        )
    if isinstance(scheme.granularity, PerToken):
        raise NumfmtError(
            "a static range cannot be per token (the tokens change with every input); "
            "use a per-tensor activation scheme such as int8 or int8/percentile:99.99"
        )
    observers = {name: Observer(scheme) for name, _, kind, _ in chosen if kind != "embedding"}
    hooks = []
    for name, module, _, _ in chosen:
        if name in observers:

            def hook(_module, args, obs=observers[name]):
                x = args[0].detach()
                obs.update(x.reshape(-1, x.shape[-1]))

            hooks.append(module.register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            for batch in _batches(calibration):
                model(batch)
    finally:
        for h in hooks:
            h.remove()
    return {name: obs.qparams() for name, obs in observers.items() if obs.batches}


def layer_weights(models: dict[str, nn.Module], layer: str) -> dict[str, torch.Tensor]:
    """One layer's weight in each model, as float32 in Linear's layout: the float model's as
    it is, a quantized model's decoded from its codes (for ``numfmt.plot.models``)."""
    out = {}
    for label, model in models.items():
        try:
            module = model.get_submodule(layer)
        except AttributeError:
            raise NumfmtError(f"no layer '{layer}' in the model '{label}'") from None
        if isinstance(module, QuantLinear | QuantEmbedding):
            out[label] = module.dequantized_weight(torch.float32)
        else:
            kind = layer_kind(module)
            if kind is None:
                raise NumfmtError(f"'{layer}' is a {type(module).__name__}, not a weight layer")
            out[label] = linear_weight(module, kind).float()
    return out
