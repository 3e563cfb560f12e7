"""A quantized model in one ``.safetensors`` file, and back.

Each quantized layer's weight is stored in the quantization layer's own layout (packed codes,
scales, zero points: ``numfmt.quant.io``) under the layer's name; every other parameter and
buffer as it is (float32). The metadata holds the recipe, each quantized layer's kind (linear,
conv1d, embedding) and activation scheme, and the source model's transformers config, from
which :func:`load_quantized` rebuilds the architecture (or give it a model to fill). The file
is written atomically; nothing is written over an existing file or the model's own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from numfmt.errors import NumfmtError
from numfmt.nn.modules import QuantEmbedding, QuantLinear
from numfmt.quant import _xp, io
from numfmt.quant.qparams import QParams
from numfmt.quant.schemes import parse_scheme
from numfmt.quant.tensor import QuantizedTensor

FORMAT = "numfmt.model/1"


def save_model(
    model: nn.Module,
    path: str | Path,
    *,
    report: Any = None,
    source: Any = None,
    overwrite: bool = False,
) -> Path:
    """Write a model quantized by ``quantize_model`` (see the module's docstring)."""
    quantized: dict[str, QuantizedTensor] = {}
    layers: dict[str, dict[str, Any]] = {}
    extra: dict[str, np.ndarray] = {}
    skip: set[str] = set()
    for name, module in model.named_modules():
        if isinstance(module, QuantLinear | QuantEmbedding):
            quantized[name] = module.quantized()
            kind = module.source if isinstance(module, QuantLinear) else "embedding"
            act = getattr(module, "activation_scheme", None)
            layers[name] = {
                "kind": kind,
                "activations": str(act) if act else None,
                "bias": getattr(module, "bias_mode", "float"),
            }
            static = getattr(module, "activations", None)
            if isinstance(static, QParams):  # calibrated ranges: kept as plain arrays
                layers[name]["static_shape"] = list(static.grouping.shape)
                for part in ("scale", "zero_point", "lo", "hi"):
                    value = getattr(static, part)
                    if value is not None:
                        extra[f"{name}.act_{part}"] = _xp.to_numpy(value)
            skip.update(f"{name}.{b}" for b, _ in module.named_buffers(recurse=False))
    if not quantized:
        raise NumfmtError("the model has no quantized layer: quantize it first (quantize_model)")
    plain = {}
    seen: dict[int, str] = {}
    tied: dict[str, str] = {}
    for key, t in model.state_dict(keep_vars=True).items():
        if key in skip or t is None:
            continue
        ptr = t.data_ptr()
        if ptr in seen:
            tied[key] = seen[ptr]
            continue
        seen[ptr] = key
        plain[key] = (
            t.detach().to("cpu").numpy()
            if t.dtype != torch.bfloat16
            else t.detach().float().numpy()
        )
    plain.update(extra)
    config = getattr(model, "config", None)
    meta = {
        "format": FORMAT,
        "layers": json.dumps(layers),
        "tied": json.dumps(tied),
        "recipe": json.dumps(report.to_dict()["recipe"] if report is not None else None),
        "config": config.to_json_string() if config is not None else "null",
        "architecture": type(model).__name__,
        "source": str(getattr(source, "name", "") or ""),
    }
    return io.save(path, quantized, plain=plain, metadata=meta, overwrite=overwrite)


def load_quantized(path: str | Path, model: nn.Module | None = None) -> nn.Module:
    """A model written by :func:`save_model`, with the same codes, scales and float parameters.

    Args:
        model: an instance of the architecture to fill (its own weights are replaced);
            without it the architecture is built from the transformers config in the file.

    Raises:
        NumfmtError: not such a file, or a model that does not fit it.
    """
    from numfmt.tensorio import read_metadata

    p = Path(path)
    meta = read_metadata(p)
    if meta.get("format") != FORMAT:
        raise NumfmtError(f"{p.name} is not a quantized model written by numfmt (save_model)")
    layers = json.loads(meta["layers"])
    tied = json.loads(meta.get("tied", "{}"))
    if model is None:
        model = _from_config(meta.get("config", "null"), meta.get("architecture", ""), p)
    stored = io.read_all(p)
    for name, info in layers.items():
        codes, qparams, dtype = stored[name]
        qt = QuantizedTensor(torch.as_tensor(codes), _to_torch(qparams), dtype)
        try:
            old = model.get_submodule(name)
        except AttributeError:
            raise NumfmtError(
                f"{p.name} holds the layer '{name}', which the model has not"
            ) from None
        if info["kind"] == "embedding":
            new: nn.Module = QuantEmbedding(qt, getattr(old, "padding_idx", None))
        else:
            act = parse_scheme(info["activations"]) if info.get("activations") else None
            if act is not None and "static_shape" in info:
                act = _static(p, name, act, info["static_shape"])
            has_bias = getattr(old, "bias", None) is not None
            bias = torch.zeros(old.bias.shape) if has_bias else None
            new = QuantLinear(
                qt, bias, activations=act, source=info["kind"], bias_mode=info.get("bias", "float")
            )
        model.set_submodule(name, new)
    from safetensors.numpy import load_file

    arrays = load_file(str(p))
    state = model.state_dict()
    plain = {
        k: torch.from_numpy(v) for k, v in arrays.items() if k in state and not _is_part(k, layers)
    }
    for key, target in tied.items():
        if target in plain:
            plain[key] = plain[target]
    missing = [k for k in state if k not in plain and not _is_part(k, layers)]
    if missing:
        raise NumfmtError(f"{p.name} does not fit the model: no {missing[0]}")
    model.load_state_dict(plain, strict=False)
    return model.eval()


_PARTS = ("codes", "scale", "zero_point", "minimum", "tensor_scale")
_STATIC = ("act_scale", "act_zero_point", "act_lo", "act_hi")


def _is_part(key: str, layers: dict[str, Any]) -> bool:
    owner, _, leaf = key.rpartition(".")
    return owner in layers and leaf in (*_PARTS, *_STATIC)


def _static(p: Path, name: str, scheme, shape) -> QParams:
    """A layer's calibrated activation range, as QParams (per tensor: any shape fits)."""
    from safetensors.numpy import load_file

    from numfmt.quant.granularity import Grouping

    arrays = load_file(str(p))

    def part(key):
        value = arrays.get(f"{name}.act_{key}")
        return None if value is None else torch.as_tensor(value)

    grouping = Grouping(tuple(shape), scheme.granularity)
    return QParams(
        scheme, grouping, part("scale"), part("zero_point"), None, part("lo"), part("hi")
    )


def _to_torch(qparams):
    from dataclasses import replace

    changes = {}
    for name in ("scale", "zero_point", "minimum", "tensor_scale", "lo", "hi"):
        value = getattr(qparams, name)
        if value is not None:
            changes[name] = torch.as_tensor(np.asarray(value))
    return replace(qparams, **changes)


def _from_config(config_json: str, architecture: str, p: Path) -> nn.Module:
    if config_json in ("null", ""):
        raise NumfmtError(
            f"{p.name} does not say its architecture (the model had no transformers config): "
            "pass the model to fill (load_quantized(path, model=...))"
        )
    try:
        import transformers
    except ImportError:
        raise NumfmtError(
            "rebuilding the model needs transformers: pip install 'numfmt[models]'"
        ) from None
    data = json.loads(config_json)
    config = transformers.AutoConfig.for_model(**data)
    cls = getattr(transformers, architecture, None)
    if cls is None or not hasattr(cls, "_from_config"):
        raise NumfmtError(f"{p.name}: transformers has no model class '{architecture}'")
    return cls._from_config(config)
