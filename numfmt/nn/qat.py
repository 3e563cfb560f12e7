"""Quantization-aware training: layers that train through the rounding, then convert.

``prepare_qat(model, recipe)`` swaps each chosen Linear (and Conv1D) for a :class:`QATLinear`:
its forward pass uses the weight fake-quantized by the recipe's scheme (the quantization
layer's ``fake_quantize``, whose straight-through estimator passes the gradient where a value
was not clipped), and, where the recipe quantizes activations, its input too. With
``learn_scale=True`` the weight's scale is an LSQ parameter (``numfmt.nn.lsq``) that training
moves. ``convert(model)`` turns the trained layers into the model layer's QuantLinear: the
codes a deployment stores, with the learned scale where there is one.

Activations quantized per tensor get an observer (the quantization layer's ``Observer`` with a
moving average of min and max, as torch's eager QAT does): each training batch moves the range
by ``momentum``, the batch is fake-quantized with the range so far, and in eval mode the range
stays where training left it. ``convert`` keeps that range as the deployed model's static
activation range. Per-token activations have no range to track and are scaled on the fly.
"""

from __future__ import annotations

import copy
import fnmatch
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from numfmt.errors import NumfmtError
from numfmt.nn.layers import candidates, linear_weight
from numfmt.nn.lsq import lsq_init, lsq_quantize
from numfmt.nn.modules import QuantLinear
from numfmt.nn.recipe import Recipe, parse_recipe
from numfmt.quant.fake import fake_quantize
from numfmt.quant.granularity import PerAxis, PerTensor
from numfmt.quant.observer import Observer
from numfmt.quant.qparams import QParams, choose_qparams, quantize
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
        momentum: float = 0.01,
        ste: str = "clipped",
    ) -> None:
        super().__init__()
        if ste not in ("clipped", "plain"):
            raise NumfmtError(f"ste is 'clipped' or 'plain', not {ste!r}")
        self.ste = ste
        self.weight = nn.Parameter(weight.detach().clone())
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone())
        self.scheme, self.activations, self.source = scheme, activations, source
        self.out_features, self.in_features = weight.shape
        self.observer = None
        if activations is not None and isinstance(activations.granularity, PerTensor):
            self.observer = Observer(activations, averaging="moving", momentum=momentum)
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
            # an optimizer step can carry a learned scale through zero (Adam moves it by about
            # the learning rate, while an int8 scale is about max|w| / 127): as torch.ao's
            # learnable fake quantizer does, the scale is held at float32's epsilon or above
            with torch.no_grad():
                self.scale.clamp_(min=torch.finfo(torch.float32).eps)
            return lsq_quantize(self.weight, self.scale, self.scheme.bits)
        return fake_quantize(self.weight, self.scheme, ste=self.ste)

    def input_qparams(self, x: torch.Tensor):
        """How this input is quantized: the observer's range (moved by x while training, or
        seeded by x when it has seen nothing), or the activation scheme itself (per token)."""
        if self.observer is None:
            return self.activations
        if self.training or not self.observer.batches:
            self.observer.update(x.detach())
        return self.observer.qparams()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.activations is not None:
            x = fake_quantize(x, self.input_qparams(x), ste=self.ste, nan_policy="omit")
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
        activations: QuantScheme | QParams | None = self.activations
        if self.observer is not None and self.observer.batches:
            activations = self.observer.qparams()  # the range training ended with: static
        return QuantLinear(qt, self.bias, activations=activations, source=self.source)

    def extra_repr(self) -> str:
        learned = ", learned scale" if self.scale is not None else ""
        act = f", activations={self.activations}" if self.activations is not None else ""
        observed = " (observed)" if self.observer is not None else ""
        return f"{self.in_features} -> {self.out_features}, {self.scheme}{learned}{act}{observed}"


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
    momentum: float = 0.01,
    ste: str = "clipped",
    inplace: bool = False,
    **recipe_args: Any,
) -> nn.Module:
    """The model with its chosen layers as QATLinear (a copy unless ``inplace``).

    Args:
        recipe: as for ``quantize_model`` (a scheme, a dict of name patterns, a named
            recipe); ``activations=`` quantizes each chosen layer's input too.
        learn_scale: the weight's scale becomes an LSQ parameter (symmetric int grids per
            tensor or per output channel).
        momentum: how far each training batch moves an observed activation range.
        ste: the straight-through estimator: ``clipped`` (no gradient where a value fell
            outside the grid) or ``plain`` (the gradient passes everywhere).

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> qat = prepare_qat(net, "int4/channel", activations="int8/asym")
        >>> qat[0]
        QATLinear(8 -> 4, int4/channel, activations=int8/asym (observed))
    """
    if not isinstance(model, nn.Module):
        raise NumfmtError(f"prepare_qat takes a torch module, not a {type(model).__name__}")
    r = parse_recipe(recipe, **recipe_args)
    if "embedding" in r.kinds:
        raise NumfmtError(
            "quantization-aware training here trains Linear and Conv1D layers; an embedding "
            "is a lookup with no input to fake-quantize: quantize it after training instead"
        )
    target = model if inplace else copy.deepcopy(model)
    found = candidates(target)
    _refuse_unsupported(target, r, [n for n, _, _ in found])
    swapped = 0
    for name, module, kind in found:
        scheme = r.scheme_for(name)
        if scheme is None or kind not in r.kinds:
            continue
        layer = QATLinear(
            linear_weight(module, kind),
            getattr(module, "bias", None),
            scheme,
            r.activations,
            learn_scale,
            kind,
            momentum,
            ste,
        )
        target.set_submodule(name, layer)
        swapped += 1
    if not swapped:
        raise NumfmtError("no Linear or Conv1D layer to train with quantization")
    return target


def _refuse_unsupported(model: nn.Module, recipe: Recipe, names: list[str]) -> None:
    """A pattern of the recipe that names only layers QAT cannot train (a Conv2d, a norm...)."""
    for pattern, scheme in recipe.weights:
        if scheme is None or pattern == "*" or any(fnmatch.fnmatchcase(n, pattern) for n in names):
            continue
        others = [
            f"{n} ({type(m).__name__})"
            for n, m in model.named_modules()
            if n and fnmatch.fnmatchcase(n, pattern)
        ]
        if others:
            raise NumfmtError(
                f"the recipe's pattern {pattern!r} names {', '.join(others[:3])}: QAT trains "
                "Linear and Conv1D layers only"
            )


def convert(model: nn.Module, *, inplace: bool = False) -> nn.Module:
    """The trained model with each QATLinear as the QuantLinear it stands for."""
    target = model if inplace else copy.deepcopy(model)
    layers = [(n, m) for n, m in target.named_modules() if isinstance(m, QATLinear)]
    if not layers:
        raise NumfmtError("the model has no QAT layer: prepare it with prepare_qat first")
    for name, layer in layers:
        target.set_submodule(name, layer.to_quantized())
    return target.eval()
