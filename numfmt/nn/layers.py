"""What a torch model's layers are to a recipe: their kinds, weights, ties and sizes."""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from numfmt.errors import NumfmtError
from numfmt.nn.modules import QuantEmbedding, QuantLinear


def layer_kind(module: nn.Module) -> str | None:
    """``linear``, ``conv1d`` (transformers' Conv1D: a Linear with the weight transposed),
    ``embedding``, or None for a module a recipe does not quantize."""
    if isinstance(module, nn.Linear):
        return "linear"
    if (
        type(module).__name__ == "Conv1D"
        and hasattr(module, "nf")
        and cast(torch.Tensor, module.weight).dim() == 2
    ):
        return "conv1d"
    if isinstance(module, nn.Embedding):
        return "embedding"
    return None


def linear_weight(module: nn.Module, kind: str) -> torch.Tensor:
    """The weight in Linear's layout (out_features, in_features): Conv1D's is transposed."""
    w = cast(torch.Tensor, module.weight).detach()
    return w.t() if kind == "conv1d" else w


def candidates(model: nn.Module) -> list[tuple[str, nn.Module, str]]:
    """(name, module, kind) of every layer a recipe could quantize, in the model's order."""
    out = []
    for name, module in model.named_modules():
        kind = layer_kind(module)
        if kind is not None:
            out.append((name, module, kind))
    return out


def tied(model: nn.Module) -> dict[int, list[str]]:
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
