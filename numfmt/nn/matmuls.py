"""A model whose every linear layer multiplies through a simulated accumulator.

``simulate_matmuls(model, "hopper-fp8")`` gives a copy of a torch model in which each Linear
(transformers' Conv1D, and numfmt's QuantLinear with its decoded weight, too) computes
x @ W^T with ``numfmt.arith.matmul``: operands scaled into a block scheme
(``numfmt.quant.block_operands``) where the model's inputs are FP8, then rounded, multiplied
and accumulated as the named hardware does. Run it, or score it beside the float model
(``numfmt model compare MODEL --matmul fp32,hopper-fp8``), to see what the accumulator
costs a real model.

What stays in float32, as torch computes it: the embedding, norms, activations, attention's
own products (softmax(QK^T) V), and each layer's bias (added to the simulated product). On
the CPU the products run in numba; on a GPU in torch operations on the device (the same bits);
the block scaling runs on the host. The result has the input's device and dtype. Gradients,
where asked for, are the float layer's (a straight-through estimate): the forward value is
the simulated one.
"""

from __future__ import annotations

import copy
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from numfmt.arith.matmul import Plan, plan, run
from numfmt.errors import NumfmtError
from numfmt.nn.layers import layer_kind, linear_weight
from numfmt.nn.modules import QuantLinear
from numfmt.quant.operands import BLOCK_SCHEMES, block_operand

#: Scaling chosen by "auto": a scale per token and per output channel where the model's
#: inputs are 8 bits or fewer (their range is too small for a layer's raw values), none else.
AUTO = "auto"


class SimulatedLinear(nn.Module):
    """A linear layer whose product goes through ``numfmt.arith.matmul``'s plan.

    ``weight`` is held in Linear's layout (out_features, in_features), shared with the layer
    it replaces (not copied); its block scaling, where there is one, is computed on first
    use and kept until the weight changes.
    """

    def __init__(
        self,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        settings: Plan,
        scaling: str | None,
        name: str = "",
    ) -> None:
        super().__init__()
        self.weight = weight
        self.bias = bias
        self.settings = settings
        self.scaling = scaling
        self.name = name
        self.in_features = weight.shape[1]
        self.out_features = weight.shape[0]
        self._b: tuple[np.ndarray, np.ndarray | None] | None = None
        self._key: tuple[int, int] | None = None

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"scaling={self.scaling}"
        )

    def _weight_operand(self) -> tuple[np.ndarray, np.ndarray | None]:
        """W^T (K, N) as the product takes it, scaled into the block scheme: kept until the
        weight changes (an optimizer's step bumps its version)."""
        key = (self.weight.data_ptr(), self.weight._version)
        if self._b is None or self._key != key:
            w = _host(self.weight).T  # (K, N)
            if self.scaling is None:
                self._b = (np.ascontiguousarray(w), None)
            else:
                self._b = block_operand(w, self.scaling, "b")
            self._key = key
        return self._b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise NumfmtError(
                f"{self.name or 'layer'}: input of {x.shape[-1]} features, the layer takes "
                f"{self.in_features}"
            )
        flat = _host(x.reshape(-1, self.in_features))
        qb, sb = self._weight_operand()
        if self.scaling is None:
            qa, scales = flat, None
        else:
            qa, sa = block_operand(flat, self.scaling, "a")
            scales = (sa, sb)
        qa, qb = _padded(qa, qb, self.settings)
        # on a GPU, a's values go back as a tensor there: the product's O(MKN) work runs on
        # the device (numfmt.arith.matmul's torch kernels), the same bits as the host's
        operand = qa if x.device.type == "cpu" else torch.from_numpy(qa).to(x.device)
        try:
            out = run(operand, qb, self.settings, scales)
        except NumfmtError as exc:
            raise type(exc)(f"{self.name or 'layer'}: {exc}") from None
        y = torch.as_tensor(out).to(device=x.device, dtype=x.dtype)
        y = y.reshape(*x.shape[:-1], self.out_features)
        if self.bias is not None:
            y = y + self.bias.to(y.dtype)
        if torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad):
            exact = nn.functional.linear(x, self.weight.to(x.dtype), self.bias)
            y = exact + (y - exact).detach()  # the simulated value, the float layer's gradient
        return y


def _host(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def _padded(qa: np.ndarray, qb: np.ndarray, p: Plan) -> tuple[np.ndarray, np.ndarray]:
    """The operands with zeros added along K up to a whole number of fused groups, as a GEMM
    library pads them (zeros add nothing to a group's sum)."""
    if p.fused is None or qa.shape[1] % p.fused.size == 0:
        return qa, qb
    extra = -qa.shape[1] % p.fused.size
    return np.pad(qa, ((0, 0), (0, extra))), np.pad(qb, ((0, extra), (0, 0)))


def scaling_for(p: Plan, scaling: str | None = AUTO) -> str | None:
    """The block scheme a plan's operands go through: ``scaling`` itself, or for ``auto``
    ``row`` where the plan rounds its inputs to 8 bits or fewer, else none."""
    if scaling is None or str(scaling).lower() == "none":
        return None
    name = str(scaling).strip().lower()
    if name == AUTO:
        fmt = p.inputs.fmt if p.inputs is not None else None
        return "row" if fmt is not None and fmt.bits <= 8 else None
    if name not in BLOCK_SCHEMES:
        raise NumfmtError(
            f"unknown scaling '{scaling}'; choose auto, none or one of {', '.join(BLOCK_SCHEMES)}"
        )
    return name


def simulate_matmuls(
    model: nn.Module,
    matmul: str | Plan = "hopper-fp8",
    *,
    scaling: str | None = AUTO,
    inplace: bool = False,
    **settings: Any,
) -> nn.Module:
    """A copy of ``model`` (or the model itself, with ``inplace``) whose linear layers
    multiply through the matmul model ``matmul`` (a name of ``numfmt.arith.hardware``, or a
    ``Plan``); ``settings`` override the model's (``accumulator="bf16"``, ``promote_every=
    256`` ...: ``numfmt.arith.matmul.plan``'s). ``scaling``: the block scheme the operands
    are quantized into first (``row``, ``tensor``, ``deepseek``, ``mxfp8`` ...:
    ``numfmt.quant.operands``), ``none``, or ``auto`` (``row`` for FP8 inputs, else none).

    The copy shares the model's tensors (nothing is duplicated); only the layers change.

    Example:
        >>> import torch
        >>> layer = torch.nn.Sequential(torch.nn.Linear(64, 4))
        >>> sim = simulate_matmuls(layer, "bf16-accumulate")
        >>> type(sim[0]).__name__, sim[0].scaling
        ('SimulatedLinear', None)
    """
    p = matmul if isinstance(matmul, Plan) else plan(model=matmul, **settings)
    if isinstance(matmul, Plan) and settings:
        raise NumfmtError("give the settings in the Plan, or a model's name with settings")
    how = scaling_for(p, scaling)
    alone = _simulated(model, "", p, how)
    if alone is not None:  # a single layer: its simulated twin
        return alone
    if not inplace:
        memo = {id(t): t for t in [*model.parameters(), *model.buffers()]}
        model = copy.deepcopy(model, memo)
    found = 0
    for name, module in list(model.named_modules())[1:]:
        layer = _simulated(module, name, p, how)
        if layer is None:
            continue
        _replace(model, name, layer)
        found += 1
    if not found:
        raise NumfmtError("the model has no linear layer to simulate")
    return model


def _simulated(module: nn.Module, name: str, p: Plan, how: str | None) -> nn.Module | None:
    if isinstance(module, QuantLinear):
        weight = module.dequantized_weight(torch.float32)
        return SimulatedLinear(weight, module.bias, p, how, name)
    kind = layer_kind(module)
    if kind not in ("linear", "conv1d"):
        return None
    bias = module.bias if isinstance(module.bias, torch.Tensor) else None
    if kind == "linear":
        weight = cast(torch.Tensor, module.weight)
        return SimulatedLinear(weight, bias, p, how, name)  # shared, not copied
    return SimulatedLinear(linear_weight(module, kind), bias, p, how, name)


def _replace(model: nn.Module, name: str, layer: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, layer)
