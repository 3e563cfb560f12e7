"""A quantized model in one ``.safetensors`` file, and back.

Each quantized layer's weight is stored in the quantization layer's own layout (packed codes,
scales, zero points: ``numfmt.quant.io``) under the layer's name; every other parameter and
buffer as it is (float32). The metadata holds the recipe, each quantized layer's kind (linear,
conv1d, embedding) and activation scheme, and the source model's transformers config, from
which :func:`load_quantized` rebuilds the architecture (or give it a model to fill). The file
is written atomically; nothing is written over an existing file or the model's own.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from numfmt._extras import require
from numfmt._safetensors import SafetensorsWriter
from numfmt.errors import NumfmtError
from numfmt.models.placement import release_after_use
from numfmt.models.sources import INSTALLED, QUANTIZED_FORMAT
from numfmt.nn.modules import QuantEmbedding, QuantLinear
from numfmt.nn.path import Weight
from numfmt.quant import _xp, io
from numfmt.quant.granularity import Grouping
from numfmt.quant.qparams import QParams, code_dtype
from numfmt.quant.schemes import QuantScheme, parse_scheme
from numfmt.quant.tensor import QuantizedTensor
from numfmt.tensorio import list_tensors, load_tensor, read_metadata

FORMAT = QUANTIZED_FORMAT


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
        "tied": json.dumps(tied),
        "recipe": json.dumps(report.to_dict()["recipe"] if report is not None else None),
        "config": config.to_json_string() if config is not None else "null",
        "architecture": type(model).__name__,
        "source": origin(source),
    }
    with NumfmtFile(path, overwrite=overwrite) as out:
        for key, array in plain.items():
            out.add(key, array)
        for name, qt in quantized.items():
            out.add_layer(name, qt, layers[name])
        return out.close(meta)


class NumfmtFile:
    """numfmt's one-file layout as a sink of the quantize path (``numfmt.nn.path``): each
    quantized layer in the quantization layer's layout (``numfmt.quant.io``: packed codes,
    scales, zero points) under its name, every other tensor as it is (bfloat16 as float32),
    written a tensor at a time through the one safetensors writer, and the metadata that
    :func:`load_quantized` reads. Use it as a context manager; ``close(metadata)`` writes.
    """

    def __init__(
        self, path: str | Path, *, overwrite: bool = False, inputs: tuple[Path, ...] = ()
    ) -> None:
        self.writer = SafetensorsWriter(path, overwrite=overwrite, inputs=inputs)
        self.path = self.writer.path
        self.layers: dict[str, dict[str, Any]] = {}
        self.layout: dict[str, Any] = {}

    def add(self, name: str, array: np.ndarray) -> int:
        """A tensor stored as it is (bfloat16 widened to float32); the bytes it takes."""
        a = np.asarray(array)
        return self.writer.add(name, a.astype(np.float32) if a.dtype.name == "bfloat16" else a)

    def add_layer(self, name: str, qt: QuantizedTensor, info: dict[str, Any]) -> int:
        """A quantized layer's parts, and its ``info`` (kind, activations, bias) for the
        metadata; the bytes they take."""
        if any(name.endswith(s) for s in (".codes", ".scale")):
            raise NumfmtError(f"'{name}' cannot name a tensor (it ends like one of its parts)")
        entries, self.layout[name] = io.tensor_entries(name, qt, "low_first")
        self.layers[name] = info
        return sum(self.writer.add(k, v) for k, v in entries.items())

    def put(self, item: Weight, qt: QuantizedTensor) -> int:
        assert item.layer is not None
        info = {"kind": item.kind, "activations": None, "bias": "float"}
        return self.add_layer(item.layer, qt, info)

    def keep(self, item: Weight) -> int:
        return self.add(item.name, item.tensor if item.raw is None else item.raw)

    def close(self, metadata: dict[str, str]) -> Path:
        meta = {
            "format": FORMAT,
            "layers": json.dumps(self.layers),
            **metadata,
            "numfmt": json.dumps(
                {"layout": io.LAYOUT, "tensors": self.layout}, separators=(",", ":")
            ),
        }
        return self.writer.close(meta)

    def __enter__(self) -> NumfmtFile:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.writer.__exit__(*exc_info)


def origin(source: Any) -> str:
    """What a quantized file says it was made from, so that its tokenizer can be found
    later from anywhere: an installed model's name, else the absolute path."""
    if source is None:
        return ""
    if isinstance(source, str | Path):
        text = str(source)
    else:  # a ModelSource
        text = source.name if source.name in INSTALLED else str(source.path)
    if not text or text in INSTALLED:
        return text
    return str(Path(text).expanduser().resolve())


def load_quantized(
    path: str | Path,
    model: nn.Module | None = None,
    *,
    device_map: str | dict[str, Any] | None = None,
    max_memory: dict[Any, Any] | None = None,
    offload_folder: str | Path | None = None,
    verify: bool = True,
) -> nn.Module:
    """A model written by :func:`save_model`, with the same codes, scales and float parameters.

    Args:
        model: an instance of the architecture to fill (its own weights are replaced);
            without it the architecture is built from the transformers config in the file.
        device_map: place the model by accelerate's big-model loading rather than all in
            memory: ``"auto"`` (or ``"balanced"`` ...: accelerate's ``infer_auto_device_map``
            within ``max_memory``, such as ``{"cpu": "2GB"}``) or a map of module names to
            ``"cpu"``, a CUDA device or ``"disk"``. The model is built empty (meta tensors),
            each tensor is read from the file one at a time and put on its device, and the
            modules mapped to ``disk`` are written to ``offload_folder`` and read back by
            accelerate's hooks layer by layer during the forward pass, so a model larger than
            memory can run.
        verify: check every tensor against the dtype, shape and SHA-256 that numfmt wrote
            beside it (a flipped byte or an edited header is refused); ``False`` skips the
            sums (about a second per GB) for a file you trust. The layout's own checks (each
            part's dtype and shape, finite scales) always run.

    Raises:
        NumfmtError: not such a file, a model that does not fit it, or a tensor changed or
            damaged since it was written.
    """

    p = Path(path)
    meta = read_metadata(p)
    if meta.get("format") != FORMAT:
        raise NumfmtError(f"{p.name} is not a quantized model written by numfmt (save_model)")
    layers, tied = _layout(p, meta)
    if isinstance(device_map, str) and device_map not in DEVICE_MAPS:
        raise NumfmtError(
            f"device_map={device_map!r}: give a dict of module names to devices or one of "
            f"{', '.join(DEVICE_MAPS)} (accelerate's)"
        )
    if device_map is not None:
        return _dispatched(
            p, meta, layers, tied, model, device_map, max_memory, offload_folder, verify
        )
    empty = model is None
    if model is None:  # built on the meta device: no random float weights made only to be replaced
        model = _skeleton(meta, p)
    for name, info in layers.items():
        model.set_submodule(name, _layer(p, name, info, _submodule(model, name, p), verify))

    stored = list_tensors(p)
    state = model.state_dict()
    plain = {
        k: torch.from_numpy(load_tensor(p, k, verify=verify)[1])
        for k in stored
        if k in state and not _is_part(k, layers)
    }
    for key, target in tied.items():
        if target in plain:
            plain[key] = plain[target]
    missing = [k for k in state if k not in plain and not _is_part(k, layers)]
    if missing:
        raise NumfmtError(f"{p.name} does not fit the model: no {missing[0]}")
    model.load_state_dict(plain, strict=False, assign=empty)
    return model.eval()


def _skeleton(meta: dict[str, str], p: Path) -> nn.Module:
    """The file's architecture with its parameters on the meta device, its tied weights tied
    (a quantized head is then replaced, and tied no more)."""
    with _empty_weights():
        model = _from_config(meta.get("config", "null"), meta.get("architecture", ""), p)
    if hasattr(model, "tie_weights"):
        cast(Any, model).tie_weights()
    return model


def _empty_weights():
    """accelerate's init_empty_weights (parameters on the meta device, buffers real), or
    nothing when accelerate is not installed."""
    try:
        from accelerate import init_empty_weights
    except ImportError:  # pragma: no cover - accelerate comes with the models extra
        import contextlib

        return contextlib.nullcontext()
    return init_empty_weights()


def _submodule(model: nn.Module, name: str, p: Path) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError:
        raise NumfmtError(f"{p.name} holds the layer '{name}', which the model has not") from None


def _layer(p: Path, name: str, info: dict[str, Any], old: nn.Module, verify: bool) -> nn.Module:
    """One quantized layer read from the file, as a QuantLinear or QuantEmbedding."""
    codes, qparams, dtype = io.read(p, name, verify=verify)
    qt = QuantizedTensor(torch.as_tensor(codes), _to_torch(qparams), dtype)
    return _module(p, name, info, old, qt, verify, "cpu")


def _sized_layer(
    p: Path, name: str, info: dict[str, Any], old: nn.Module, layout: dict[str, Any], verify: bool
) -> nn.Module:
    """One quantized layer on the meta device, built from the file's header and layout
    alone (scheme, shape, which parts are stored): the sizes a device map is computed from,
    without reading the layer's codes or scales."""
    if name not in layout:
        raise NumfmtError(f"{p.name}: the layer '{name}' has no layout in the numfmt metadata")
    stored = io.describe(p, name, layout[name])
    shape = stored.grouping.scale_shape
    # a layer holds a scale float32 cannot hold in float64: a float64 one is sized as such
    held = 1.0 + 2.0**-40 if stored.parts.get("scale") == np.dtype(np.float64) else 1.0
    one = torch.full((), held, dtype=torch.float64)

    def given(part: str, value: torch.Tensor, full: bool = True) -> torch.Tensor | None:
        # stand-ins of no memory (expanded scalars): the layer keeps their dtype and shape
        return (value.expand(shape) if full else value) if part in stored.parts else None

    qparams = QParams(
        stored.scheme,
        stored.grouping,
        one.expand(shape),
        given("zero_point", torch.zeros((), dtype=torch.int64)),
        given("tensor_scale", one, full=False),
        None,
        None,
        minimum=given("minimum", one),
    )
    codes = torch.empty(stored.shape, dtype=code_dtype(stored.scheme, torch), device="meta")
    qt = QuantizedTensor(codes, qparams, stored.dtype or "float32")
    return _module(p, name, info, old, qt, verify, "meta").to("meta")


def _module(
    p: Path,
    name: str,
    info: dict[str, Any],
    old: nn.Module,
    qt: QuantizedTensor,
    verify: bool,
    device: str,
) -> nn.Module:
    """The QuantLinear or QuantEmbedding that holds ``qt`` in place of ``old``."""
    if info["kind"] == "embedding":
        return QuantEmbedding(qt, getattr(old, "padding_idx", None))
    act: QuantScheme | QParams | None = (
        parse_scheme(info["activations"]) if info.get("activations") else None
    )
    if act is not None and "static_shape" in info:
        act = _static(p, name, act, info["static_shape"], verify)
    has_bias = getattr(old, "bias", None) is not None
    bias = torch.zeros(cast(torch.Tensor, old.bias).shape, device=device) if has_bias else None
    return QuantLinear(
        qt, bias, activations=act, source=info["kind"], bias_mode=info.get("bias", "float")
    )


#: The placements accelerate computes itself from a name.
DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")


def _layout(p: Path, meta: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The file's layers and tied names from its metadata; a NumfmtError naming the file
    where they are not what save_model writes."""
    try:
        layers = json.loads(meta["layers"])
        tied = json.loads(meta.get("tied", "{}"))
    except (KeyError, ValueError):
        raise NumfmtError(f"{p.name}: its layout (the layers metadata) is damaged") from None
    if not (isinstance(layers, dict) and all(isinstance(v, dict) for v in layers.values())):
        raise NumfmtError(f"{p.name}: its layout (the layers metadata) is damaged")
    if not isinstance(tied, dict):
        raise NumfmtError(f"{p.name}: its tied-weights metadata is damaged")
    return layers, tied


def _dispatched(p, meta, layers, tied, model, device_map, max_memory, offload_folder, verify):
    """load_quantized through accelerate: an empty model, its quantized layers made on the
    meta device, a device map, then each tensor read and put where the map says."""

    require("accelerate", "device_map")
    from accelerate import dispatch_model, infer_auto_device_map
    from accelerate.utils import (
        find_tied_parameters,
        offload_weight,
        retie_parameters,
        save_offload_index,
        set_module_tensor_to_device,
    )

    if model is None:
        model = _skeleton(meta, p)
    layout = io.layout_of(p)
    for name, info in layers.items():  # sized from the header: nothing read twice
        model.set_submodule(
            name, _sized_layer(p, name, info, _submodule(model, name, p), layout, verify)
        )
    ties = find_tied_parameters(model)  # as built (a quantized head is tied no more)
    if isinstance(device_map, str):
        if max_memory:
            from numfmt.models.placement import check_budget

            check_budget(model, max_memory, p.name)
        no_split = getattr(model, "_no_split_modules", None) or []
        device_map = infer_auto_device_map(
            model, max_memory=max_memory, no_split_module_classes=list(no_split)
        )
    on_disk = any(d == "disk" for d in device_map.values())
    if on_disk and offload_folder is None:
        raise NumfmtError("the device map puts modules on disk: give an offload_folder")
    folder = Path(offload_folder) if on_disk else None
    made = folder is not None and not folder.exists()
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    index: dict[str, Any] = {}

    def place(key: str, value: torch.Tensor) -> None:
        # in the dtype read (the sized layer may hold a scale in another): accelerate would
        # otherwise cast it to the one it finds
        device = _device_of(key, device_map)
        if device == "disk":
            offload_weight(value, key, str(offload_folder), index=index)
            set_module_tensor_to_device(
                model, key, "meta", value=value.to("meta"), dtype=value.dtype
            )
        else:
            set_module_tensor_to_device(model, key, device, value=value, dtype=value.dtype)

    try:
        _fill(p, model, layers, tied, device_map, place, verify)
    except BaseException:
        # a layer refused after others were offloaded (damaged, changed): nothing left behind
        for key in index:
            (folder / f"{key}.dat").unlink(missing_ok=True)
        if made:
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    if index:
        save_offload_index(index, str(offload_folder))
    retie_parameters(model, ties)
    dispatch_model(
        model,
        device_map,
        offload_dir=str(offload_folder) if on_disk else None,
        offload_buffers=True,
    )
    release_after_use(model)
    return model.eval()


def _fill(p, model, layers, tied, device_map, place, verify) -> None:
    """Read each tensor of the file once and ``place`` it where the map says: a quantized
    layer at a time, then the float tensors (a tied one once, where its twin is in memory)."""
    state = model.state_dict()
    names = list_tensors(p)
    filled = set()
    for name, info in layers.items():
        fresh = _layer(p, name, info, _submodule(model, name, p), verify)
        for key, value in fresh.state_dict().items():
            if f"{name}.{key}" in state:
                place(f"{name}.{key}", value)
                filled.add(f"{name}.{key}")
        if info["kind"] != "embedding" and f"{name}.bias" in names:
            bias = load_tensor(p, f"{name}.bias", verify=verify)[1]
            place(f"{name}.bias", torch.from_numpy(bias))
        del fresh
    for key in state:
        if key in filled or _is_part(key, layers):
            continue
        stored = tied.get(key, key)  # a tied weight is stored once, under its twin's name
        if key in tied and _device_of(key, device_map) == _device_of(stored, device_map) != "disk":
            continue  # in memory beside its twin: retied below, not loaded twice
        if stored not in names:
            if state[key].device.type == "meta":
                raise NumfmtError(f"{p.name} does not fit the model: no {key}")
            continue  # a buffer the model makes itself (rotary frequencies ...)
        place(key, torch.from_numpy(load_tensor(p, stored, verify=verify)[1]))


def _device_of(key: str, device_map: dict[str, Any]) -> Any:
    """The device the map gives the module that holds ``key`` (its longest named prefix)."""
    from numfmt.models.placement import placed_on

    where = placed_on(key, device_map)
    if where is None:
        raise NumfmtError(f"the device map places no module that holds {key}")
    return where


_PARTS = ("codes", "scale", "zero_point", "minimum", "tensor_scale")
_STATIC = ("act_scale", "act_zero_point", "act_lo", "act_hi")


def _is_part(key: str, layers: dict[str, Any]) -> bool:
    owner, _, leaf = key.rpartition(".")
    return owner in layers and leaf in (*_PARTS, *_STATIC)


def _static(p: Path, name: str, scheme, shape, verify: bool) -> QParams:
    """A layer's calibrated activation range, as QParams (per tensor: any shape fits)."""

    present = list_tensors(p)

    def part(key):
        full = f"{name}.act_{key}"
        return torch.as_tensor(load_tensor(p, full, verify=verify)[1]) if full in present else None

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

    transformers = require("transformers", "rebuilding the model")
    try:
        data = json.loads(config_json)
        config = transformers.AutoConfig.for_model(**data)
    except (ValueError, TypeError, KeyError):
        raise NumfmtError(f"{p.name}: its transformers config (metadata) is damaged") from None
    cls = getattr(transformers, architecture, None)
    if cls is None or not hasattr(cls, "_from_config"):
        raise NumfmtError(f"{p.name}: transformers has no model class '{architecture}'")
    return cls._from_config(config)
