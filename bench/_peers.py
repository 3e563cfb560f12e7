"""The peer libraries' quantizers, each as a function model -> quantized model (in place).

Each needs its package (the ``bench`` extra); a peer that is missing or fails on this
machine is reported as such by bench/models.py, never silently left out.
"""

from __future__ import annotations

import torch
from torch import nn


def _blocks_only(model):
    """The Linear layers of the transformer blocks (the output head stays in float, as
    numfmt's recipes leave it)."""
    return lambda module, name: isinstance(module, nn.Linear) and name != "lm_head"


def quanto(weights: str):
    def run(model):
        from optimum import quanto as q

        q.quantize(model, weights=getattr(q, weights), exclude=["lm_head"])
        q.freeze(model)
        return model

    return run


def torchao_int8(model):
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    quantize_(model, Int8WeightOnlyConfig(), filter_fn=_blocks_only(model))
    return model


def torchao_int4(group: int):
    def run(model):
        from torchao.quantization import IntxWeightOnlyConfig, quantize_
        from torchao.quantization.granularity import PerGroup

        config = IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(group))
        quantize_(model, config, filter_fn=_blocks_only(model))
        return model

    return run


def torchao_w8a8(model):
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    quantize_(model, Int8DynamicActivationInt8WeightConfig(), filter_fn=_blocks_only(model))
    return model


def hqq(bits: int, group: int):
    def run(model):
        from hqq.core.quantize import BaseQuantizeConfig, HQQLinear

        config = BaseQuantizeConfig(nbits=bits, group_size=group)
        for name, module in list(model.named_modules()):
            if isinstance(module, nn.Linear) and name != "lm_head":
                layer = HQQLinear(module, config, compute_dtype=torch.float32, device="cpu")
                model.set_submodule(name, layer)
        return model

    return run


def torch_dynamic(model):
    """PyTorch's own W8A8: int8 weights per tensor, activations per tensor, dynamic."""
    blocks = nn.ModuleDict({"model": model.model})
    torch.ao.quantization.quantize_dynamic(blocks, {nn.Linear}, dtype=torch.qint8, inplace=True)
    return model


PEERS = {
    "quanto int8": quanto("qint8"),
    "quanto int4": quanto("qint4"),
    "torchao int8": torchao_int8,
    "torchao int4 g32": torchao_int4(32),
    "torchao int4 g128": torchao_int4(128),
    "torchao W8A8 per token": torchao_w8a8,
    "hqq 8-bit g64": hqq(8, 64),
    "hqq 4-bit g64": hqq(4, 64),
    "torch quantize_dynamic (W8A8 per tensor)": torch_dynamic,
}
