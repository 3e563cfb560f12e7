"""Quantization-aware training: layers that train through the rounding, then convert.

``prepare_qat(model, recipe)`` swaps each chosen Linear (and Conv1D) for a :class:`QATLinear`:
its forward pass uses the weight fake-quantized by the recipe's scheme (the quantization
layer's ``fake_quantize``, whose straight-through estimator passes the gradient where a value
was not clipped), and, where the recipe quantizes activations, its input too. With
``learn_scale=True`` the weight's scale is an LSQ parameter (``numfmt.nn.lsq``) that training
moves. ``convert(model)`` turns the trained layers into the model layer's QuantLinear: the
codes a deployment stores, with the learned scale where there is one.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from numfmt.errors import NumfmtError
from numfmt.nn.lsq import lsq_init, lsq_quantize
from numfmt.nn.modules import QuantLinear
from numfmt.nn.quantize import candidates, linear_weight
from numfmt.nn.recipe import parse_recipe
from numfmt.quant.fake import fake_quantize
from numfmt.quant.granularity import PerAxis, PerTensor
from numfmt.quant.qparams import choose_qparams, quantize
from numfmt.quant.schemes import QuantScheme
from numfmt.quant.tensor import QuantizedTensor


class QATLinear(nn.Module):
    """A Linear layer trained with its weight (and optionally its input) fake-quantized."""

    def __init__(
        self,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        scheme: QuantScheme,
        activations: QuantScheme | None = None,
        learn_scale: bool = False,
        source: str = "linear",
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.detach().clone())
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone())
        self.scheme, self.activations, self.source = scheme, activations, source
        self.out_features, self.in_features = weight.shape
        self.scale = None
        if learn_scale:
            _check_lsq(scheme)
            w = self.weight.detach()
            if isinstance(scheme.granularity, PerTensor):
                init = lsq_init(w, scheme.bits)
            else:
                init = torch.stack([lsq_init(row, scheme.bits) for row in w])[:, None]
            self.scale = nn.Parameter(init.to(w.dtype))

    def quantized_weight(self) -> torch.Tensor:
        if self.scale is not None:
            return lsq_quantize(self.weight, self.scale, self.scheme.bits)
        return fake_quantize(self.weight, self.scheme)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.activations is not None:
            x = fake_quantize(x, self.activations, nan_policy="omit")
        return nn.functional.linear(x, self.quantized_weight(), self.bias)

    def to_quantized(self) -> QuantLinear:
        """The QuantLinear a deployment stores: codes of the trained weight (by the learned
        scale, rounded up to the scale format, where there is one)."""
        w = self.weight.detach()
        qp = choose_qparams(w, self.scheme)
        if self.scale is not None:
            learned = (
                self.scale.detach().to(torch.float32).to(torch.float64).reshape(qp.scale.shape)
            )
            qp = replace(qp, scale=learned)
        qt = QuantizedTensor(quantize(w, qp), qp, str(w.dtype).removeprefix("torch."))
        return QuantLinear(qt, self.bias, activations=self.activations, source=self.source)

    def extra_repr(self) -> str:
        learned = ", learned scale" if self.scale is not None else ""
        return f"{self.in_features} -> {self.out_features}, {self.scheme}{learned}"


def _check_lsq(scheme: QuantScheme) -> None:
    g = scheme.granularity
    ok = (
        scheme.kind == "int"
        and scheme.mapping.value == "symmetric"
        and scheme.restricted
        and (isinstance(g, PerTensor) or (isinstance(g, PerAxis) and g.axis in (0, -2)))
    )
    if not ok:
        raise NumfmtError(
            f"a learned (LSQ) scale takes a symmetric int grid per tensor or per output "
            f"channel, not {scheme}"
        )


def prepare_qat(
    model: nn.Module,
    recipe: Any = "int8/channel",
    *,
    learn_scale: bool = False,
    inplace: bool = False,
    **recipe_args: Any,
) -> nn.Module:
    """The model with its chosen layers as QATLinear (a copy unless ``inplace``)."""
    r = parse_recipe(recipe, **recipe_args)
    target = model if inplace else copy.deepcopy(model)
    swapped = 0
    for name, module, kind in candidates(target):
        scheme = r.scheme_for(name)
        if scheme is None or kind == "embedding" or kind not in r.kinds:
            continue
        layer = QATLinear(
            linear_weight(module, kind),
            getattr(module, "bias", None),
            scheme,
            r.activations,
            learn_scale,
            kind,
        )
        target.set_submodule(name, layer)
        swapped += 1
    if not swapped:
        raise NumfmtError("no Linear or Conv1D layer to train with quantization")
    return target


def convert(model: nn.Module, *, inplace: bool = False) -> nn.Module:
    """The trained model with each QATLinear as the QuantLinear it stands for."""
    target = model if inplace else copy.deepcopy(model)
    layers = [(n, m) for n, m in target.named_modules() if isinstance(m, QATLinear)]
    if not layers:
        raise NumfmtError("the model has no QAT layer: prepare it with prepare_qat first")
    for name, layer in layers:
        target.set_submodule(name, layer.to_quantized())
    return target.eval()
